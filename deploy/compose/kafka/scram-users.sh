#!/usr/bin/env bash
# Creates or updates the SCRAM-SHA-512 credential of every principal of the production profile except the
# admin (created when the storage was formatted, see start.sh). Runs as the one-shot `kafka-credentials`
# job of docker-compose.prod.yml on every start, so adding a partner or rotating a password is: change
# .env (and deploy/compose/prod/acls.toml), then `docker compose ... up -d`.
#
#   SCRAM_USERS            whitespace-separated name=password pairs
#   KAFKA_BOOTSTRAP        the broker, as the admin reaches it (default kafka:19092)
#   KAFKA_ADMIN_PASSWORD   the admin's password
#   KAFKA_HOME             default /opt/kafka
set -euo pipefail

kafka_home=${KAFKA_HOME:-/opt/kafka}
bootstrap=${KAFKA_BOOTSTRAP:-kafka:19092}
admin_password=${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is needed}
users=${SCRAM_USERS:?SCRAM_USERS lists name=password pairs}

die() { printf 'kafka credentials: %s\n' "$*" >&2; exit 1; }

runtime=$(mktemp -d)
trap 'rm -rf "$runtime"' EXIT
chmod 700 "$runtime"
printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=SCRAM-SHA-512" \
  "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$admin_password\";" \
  >"$runtime/admin.properties"

for pair in $users; do
  name=${pair%%=*}
  password=${pair#*=}
  [[ $name =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "bad principal name '$name'"
  [[ $name != admin ]] || die "the admin's credential is made at format time; leave it out of SCRAM_USERS"
  # SCRAM specs have their own quoting; allow only characters that need none.
  [[ $password =~ ^[A-Za-z0-9_-]{16,}$ ]] \
    || die "the password of '$name' must be at least 16 characters of A-Z a-z 0-9 _ -"
  "$kafka_home/bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$runtime/admin.properties" \
    --alter --entity-type users --entity-name "$name" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" >/dev/null
  printf 'kafka credentials: %s ready\n' "$name"
done
