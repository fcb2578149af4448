#!/usr/bin/env bash
# Starts single-node KRaft Kafka inside the apache/kafka image (or any Kafka distribution) from the
# properties files beside this script, instead of the image's KAFKA_* environment configuration: the
# production profile needs SCRAM credentials created when the storage is formatted, before the broker
# first starts, and the image's launcher formats without them.
#
#   KAFKA_PROFILE          dev | prod: base.properties + <profile>.properties
#   KAFKA_CLUSTER_ID       cluster id used by the first format (kafka-storage.sh random-uuid makes one)
#   KAFKA_EXTERNAL_HOST    host name advertised on the EXTERNAL listener (default localhost)
#   KAFKA_EXTERNAL_PORT    port advertised on the EXTERNAL listener (the published port; default 9092)
#   KAFKA_ADMIN_PASSWORD   prod: the super user's SCRAM password (also broker <-> controller)
#   KAFKA_INTERNAL_HOST, KAFKA_DATA_DIR, KAFKA_HOME, KAFKA_RUNTIME_DIR: defaults fit the image
#
# It also writes $KAFKA_RUNTIME_DIR/client.properties, the admin's client settings, for the health check
# and operators' tools: kafka-topics.sh --command-config /tmp/kafka/client.properties ...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
profile=${KAFKA_PROFILE:?KAFKA_PROFILE must be dev or prod}
kafka_home=${KAFKA_HOME:-/opt/kafka}
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
runtime=${KAFKA_RUNTIME_DIR:-/tmp/kafka}
conf="$runtime/server.properties"
client="$runtime/client.properties"

die() { printf 'kafka start: %s\n' "$*" >&2; exit 1; }

[[ -f "$here/$profile.properties" ]] || die "no $profile.properties beside this script"

admin_password=""
if [[ $profile == prod ]]; then
  admin_password=${KAFKA_ADMIN_PASSWORD:?the prod profile needs KAFKA_ADMIN_PASSWORD}
  # The password is written into JAAS lines and SCRAM specs, which have their own quoting: allow only
  # characters that need none (what `openssl rand -hex 32` and Python's secrets.token_urlsafe produce).
  [[ $admin_password =~ ^[A-Za-z0-9_-]{16,}$ ]] \
    || die "KAFKA_ADMIN_PASSWORD must be at least 16 characters of A-Z a-z 0-9 _ -"
fi

mkdir -p "$runtime" "$data"
chmod 700 "$runtime" # the rendered files hold the admin password
umask 077
cat "$here/base.properties" "$here/$profile.properties" | sed \
  -e "s|@INTERNAL_HOST@|${KAFKA_INTERNAL_HOST:-kafka}|g" \
  -e "s|@EXTERNAL_HOST@|${KAFKA_EXTERNAL_HOST:-localhost}|g" \
  -e "s|@EXTERNAL_PORT@|${KAFKA_EXTERNAL_PORT:-9092}|g" \
  -e "s|@DATA_DIR@|$data|g" \
  -e "s|@ADMIN_PASSWORD@|$admin_password|g" >"$conf"

if [[ $profile == prod ]]; then
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=SCRAM-SHA-512" \
    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin_password\";" \
    >"$client"
else
  printf '%s\n' "security.protocol=PLAINTEXT" >"$client"
fi

if [[ ! -f "$data/meta.properties" ]]; then
  cluster_id=${KAFKA_CLUSTER_ID:-$("$kafka_home/bin/kafka-storage.sh" random-uuid)}
  format=("$kafka_home/bin/kafka-storage.sh" format --standalone --cluster-id "$cluster_id" --config "$conf")
  if [[ $profile == prod ]]; then
    # The admin must exist before the broker's own inter-broker connection authenticates; every other
    # principal is added (and can be rotated) later by the kafka-credentials job.
    format+=(--add-scram "SCRAM-SHA-512=[name=admin,password=$admin_password]")
  fi
  "${format[@]}"
fi

# Console logging only; no GC log files (EXTRA_ARGS without -loggc) filling the container's disk.
export KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$here/log4j2.properties"
export EXTRA_ARGS="-name kafkaServer"
exec "$kafka_home/bin/kafka-server-start.sh" "$conf"
