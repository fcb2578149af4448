"""The Kubernetes chart (deploy/kubernetes/lindungi) agrees with the code it deploys.

One source of truth each, compared with the rendered chart: topics, partitions, retention and compaction with
shared/topics.py; principals and ACLs with deploy/compose/prod/acls.toml (expanded by the provision job's own
code); consumer groups and subscriptions with the services as they are built; settings names with the
services' settings classes. The chart's generated catalogue must also be what the generator writes today.
Schema validation of every object: test_kubernetes_schemas.py.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from deploy_files import ROOT, SECRET_NAME
from kubernetes_chart import FIRST_RENDER_TIMEOUT, SCHEMAS, Render, defaults, every_render

from deploy.kubernetes import catalogue
from provision import AclBinding, AclFile, Operation, PatternType, ResourceType
from provision.acls import CLUSTER_RESOURCE
from shared.topics import CATALOGUE

pytestmark = pytest.mark.timeout(FIRST_RENDER_TIMEOUT)

ACLS = ROOT / "deploy" / "compose" / "prod" / "acls.toml"
SERVICES = catalogue.SERVICES
OPERATION = {name: op for op, name in catalogue.STRIMZI_OPERATION.items()}
PATTERN = {name: pattern for pattern, name in catalogue.STRIMZI_PATTERN.items()}
RESOURCE = {name: kind for kind, name in catalogue.STRIMZI_RESOURCE.items()}


@pytest.fixture(scope="module")
def acl_file() -> AclFile:
    return AclFile.load(ACLS)


@pytest.fixture(scope="module")
def services(acl_file: AclFile) -> dict[str, dict[str, Any]]:
    """Each service's port, database and subscriptions (topics, group), read from the built service."""
    return catalogue.service_entries(acl_file)


def settings_of(service: str) -> type[Any]:
    return getattr(importlib.import_module(f"services.{service}.settings"), f"{service.capitalize()}Settings")  # type: ignore[no-any-return]


def kafka_user_bindings(user: dict[str, Any]) -> set[AclBinding]:
    """A KafkaUser's ACLs, read back into the provision job's model."""
    principal = f"User:{user['metadata']['name']}"
    found = set()
    for rule in user["spec"]["authorization"]["acls"]:
        assert rule.get("type", "allow") == "allow"
        assert rule.get("host", "*") == "*"
        resource = rule["resource"]
        kind = RESOURCE[resource["type"]]
        name = resource.get("name", CLUSTER_RESOURCE)
        pattern = PATTERN[resource.get("patternType", "literal")]
        found |= {AclBinding(principal, kind, pattern, name, OPERATION[op]) for op in rule["operations"]}
    return found


def grants(acls: set[AclBinding], operation: Operation, kind: ResourceType, name: str) -> bool:
    return any(
        a.operation is operation
        and a.resource_type is kind
        and (name.startswith(a.resource_name) if a.pattern_type is PatternType.PREFIXED else a.resource_name == name)
        for a in acls
    )


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def env_of(render: Render, deployment: dict[str, Any]) -> dict[str, Any]:
    """name -> literal value or valueFrom, with the ConfigMaps it loads (envFrom) included."""
    env: dict[str, Any] = {}
    for source in container(deployment).get("envFrom", []):
        env |= render.named("ConfigMap", source["configMapRef"]["name"])["data"]
    for var in container(deployment)["env"]:
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


def deployments(render: Render) -> Iterator[tuple[str, dict[str, Any]]]:
    for deployment in render.of("Deployment"):
        yield deployment["metadata"]["labels"]["app.kubernetes.io/component"], deployment


# --- The catalogue the templates read ---------------------------------------------------------------------


def test_the_chart_catalogue_is_what_the_generator_writes_today() -> None:
    assert catalogue.CATALOGUE.read_text() == catalogue.rendered(), (
        "deploy/kubernetes/lindungi/catalogue.yaml is stale: run python deploy/kubernetes/catalogue.py"
    )


# --- Topics: shared/topics.py and the partners' outcome topics --------------------------------------------


@pytest.mark.parametrize("render", ["defaults", "alternatives"])
def test_every_topic_is_a_kafka_topic_with_the_catalogues_partitions_and_config(render: str, acl_file: AclFile) -> None:
    chart = dict(every_render())[render]
    expected = {t.name: (t.partitions, t.config) for t in (*CATALOGUE, *acl_file.partner_topics())}
    kafka_topics = chart.of("KafkaTopic")
    found = {t["spec"]["topicName"]: (t["spec"]["partitions"], t["spec"]["config"]) for t in kafka_topics}
    assert found == expected
    for topic in kafka_topics:
        assert topic["spec"]["replicas"] == 3, "replication factor 3"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "lindungi"
        assert topic["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", "uninstall keeps the data"


# --- Principals and ACLs: deploy/compose/prod/acls.toml --------------------------------------------------


def test_each_principal_is_a_kafka_user_with_exactly_the_acl_files_rights(acl_file: AclFile) -> None:
    users = defaults().of("KafkaUser")
    expected = acl_file.bindings()
    principals = {a.principal.removeprefix("User:") for a in expected}
    assert {u["metadata"]["name"] for u in users} == principals
    assert acl_file.super_user not in principals, "Strimzi's own operators replace the admin's jobs"
    found = set().union(*(kafka_user_bindings(u) for u in users))
    assert found == set(expected)
    for user in users:
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "lindungi"


def test_each_principals_password_comes_from_its_own_secret() -> None:
    chart = defaults()
    for user in chart.of("KafkaUser"):
        ref = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        assert chart.secret_value(ref["name"], "username") == user["metadata"]["name"]
        assert len(chart.secret_value(ref["name"], ref["key"]) or "") >= 16
    names = [
        ref["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]["name"] for ref in chart.of("KafkaUser")
    ]
    assert len(set(names)) == len(names), "one Secret per principal"


# --- The Kafka cluster ------------------------------------------------------------------------------------


def test_the_kafka_cluster_is_kraft_with_three_brokers_and_durable_writes() -> None:
    chart = defaults()
    [kafka] = chart.of("Kafka")
    annotations = kafka["metadata"]["annotations"]
    assert annotations["strimzi.io/kraft"] == "enabled"
    assert annotations["strimzi.io/node-pools"] == "enabled"
    pools = chart.of("KafkaNodePool")
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) == 3
    assert sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"]) == 3
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for p in pools)
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["offsets.topic.replication.factor"] == 3
    assert config["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    for listener in kafka["spec"]["kafka"]["listeners"]:
        assert listener["authentication"]["type"] == "scram-sha-512", listener["name"]
        assert listener["type"] == "internal" or listener["tls"], "partners reach Kafka through TLS only"


# --- Consumer groups and autoscaling: the services as built -----------------------------------------------


def test_each_service_scales_on_exactly_the_groups_and_topics_it_consumes(
    services: dict[str, Any], acl_file: AclFile
) -> None:
    chart = defaults()
    known = {t.name: t.partitions for t in (*CATALOGUE, *acl_file.partner_topics())}
    scaled = {o["spec"]["scaleTargetRef"]["name"]: o for o in chart.of("ScaledObject")}
    for name, deployment in deployments(chart):
        subscriptions = {s["group"]: s for s in services[name]["subscriptions"]}
        scaled_object = scaled[deployment["metadata"]["name"]]
        triggers = {t["metadata"]["consumerGroup"]: t for t in scaled_object["spec"]["triggers"]}
        assert set(triggers) == set(subscriptions), name
        assert settings_of(name).model_fields["group_id"].default in triggers
        for group, trigger in triggers.items():
            subscription = subscriptions[group]
            assert trigger["type"] == "kafka"
            if "pattern" in subscription:  # lag summed over every topic the group reads
                assert "topic" not in trigger["metadata"]
                assert subscription["topics"] == sorted(t for t in known if re.match(subscription["pattern"], t))
            else:
                assert [trigger["metadata"]["topic"]] == subscription["topics"]
        # A group's members share its partitions: more instances than the largest group's would stand idle.
        shares = [sum(known[t] for t in s["topics"]) for s in subscriptions.values()]
        assert scaled_object["spec"]["maxReplicaCount"] == max(1, *shares)
        assert 1 <= scaled_object["spec"]["minReplicaCount"] <= scaled_object["spec"]["maxReplicaCount"]
        assert "replicas" not in deployment["spec"], "KEDA owns the replica count"


def test_keda_reads_the_lag_as_the_service_whose_acls_allow_it(services: dict[str, Any]) -> None:
    chart = defaults()
    users = {u["metadata"]["name"]: kafka_user_bindings(u) for u in chart.of("KafkaUser")}
    for name, deployment in deployments(chart):
        scaled_object = chart.named("ScaledObject", deployment["metadata"]["name"])
        subscriptions = {s["group"]: s for s in services[name]["subscriptions"]}
        env = env_of(chart, deployment)
        username_secret = env["LINDUNGI_KAFKA_SASL_USERNAME"]["secretKeyRef"]["name"]
        for trigger in scaled_object["spec"]["triggers"]:
            auth = chart.named("TriggerAuthentication", trigger["authenticationRef"]["name"])
            refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
            assert {refs["username"]["name"], refs["password"]["name"]} == {username_secret}
            acls = users[chart.secret_value(username_secret, "username") or ""]
            meta = trigger["metadata"]
            assert grants(acls, Operation.READ, ResourceType.GROUP, meta["consumerGroup"])
            for topic in subscriptions[meta["consumerGroup"]]["topics"]:
                assert grants(acls, Operation.READ, ResourceType.TOPIC, topic), (name, topic)
            assert meta["sasl"] == "scram_sha512"
            assert meta["bootstrapServers"] == env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"]


def test_keda_trigger_parameters_are_the_kafka_scalers_own() -> None:
    """KEDA's CRD types trigger metadata as a free map: its generated scaler schema says what is known."""
    scaler = json.loads((SCHEMAS / "keda" / "kafka-scaler-parameters.json").read_text())["scaler"]
    parameters = {p["name"]: p for p in scaler["parameters"]}
    for _, chart in every_render():
        for scaled_object in chart.of("ScaledObject"):
            for trigger in scaled_object["spec"]["triggers"]:
                for key, value in trigger["metadata"].items():
                    assert parameters[key].get("metadataVariableReadable"), key
                    assert value in parameters[key].get("allowedValue", [value]), (key, value)
                required = {n for n, p in parameters.items() if not p.get("optional") and "default" not in p}
                assert required <= set(trigger["metadata"]), required
                int(trigger["metadata"]["lagThreshold"])
        for auth in chart.of("TriggerAuthentication"):
            for ref in auth["spec"]["secretTargetRef"]:
                assert parameters[ref["parameter"]].get("triggerAuthenticationVariableReadable"), ref


# --- The services' settings, secrets and probes -----------------------------------------------------------


def test_every_variable_a_service_receives_is_one_of_its_settings() -> None:
    for _, chart in every_render():
        for name, deployment in deployments(chart):
            fields = settings_of(name).model_fields
            prefix = settings_of(name).model_config["env_prefix"]
            for variable in env_of(chart, deployment):
                field = variable.removeprefix(prefix).removeprefix("LINDUNGI_").lower()
                assert field in fields, f"{name}: {variable} is no setting of services/{name}/settings.py"


def test_each_service_runs_its_own_command_on_the_port_its_settings_say(services: dict[str, Any]) -> None:
    chart = defaults()
    for name, deployment in deployments(chart):
        env = env_of(chart, deployment)
        prefix = settings_of(name).model_config["env_prefix"]
        assert container(deployment)["command"] == ["python", "-m", f"services.{name}"]
        [port] = container(deployment)["ports"]
        assert port["containerPort"] == int(env[f"{prefix}HTTP_PORT"]) == services[name]["port"]
        assert env[f"{prefix}CREATE_TOPICS"] == "false", "topics are the Topic Operator's"
        assert env["LINDUNGI_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["LINDUNGI_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        service = chart.named("Service", deployment["metadata"]["name"])
        assert service["spec"]["ports"][0]["port"] == port["containerPort"]
    assert env_of(chart, chart.named("Deployment", "lindungi-registration"))["REGISTRATION_PARTNER_OUTCOME_TOPICS"]


def test_secrets_reach_the_services_only_through_secret_objects() -> None:
    for _, chart in every_render():
        for name, deployment in deployments(chart):
            for variable, value in env_of(chart, deployment).items():
                if SECRET_NAME.search(variable) or variable.endswith(("_MONGODB_URL", "SASL_USERNAME")):
                    assert isinstance(value, dict), f"{name}: {variable}"
                    assert "secretKeyRef" in value, f"{name}: {variable}"
        for config_map in chart.of("ConfigMap"):
            assert not [k for k in config_map["data"] if SECRET_NAME.search(k)], config_map["metadata"]["name"]


def test_probes_ask_health_to_stay_and_ready_to_receive_requests() -> None:
    for _, deployment in deployments(defaults()):
        spec = container(deployment)
        for probe, path in (("startupProbe", "/health"), ("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            assert spec[probe]["httpGet"] == {"path": path, "port": "http"}
        # uvicorn drains for up to 30 s after SIGTERM; the pod must be given that long.
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 30
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert spec["resources"]["requests"]["memory"]
        assert spec["resources"]["limits"]["memory"]


def test_every_service_has_a_disruption_budget_that_never_blocks_a_drain() -> None:
    chart = defaults()
    budgets = {json.dumps(p["spec"]["selector"], sort_keys=True): p for p in chart.of("PodDisruptionBudget")}
    for name, deployment in deployments(chart):
        budget = budgets[json.dumps(deployment["spec"]["selector"], sort_keys=True)]
        assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}, name


# --- MongoDB --------------------------------------------------------------------------------------------


def test_mongodb_is_a_replica_set_with_one_database_and_user_per_service(services: dict[str, Any]) -> None:
    chart = defaults()
    [mongodb] = chart.of("MongoDBCommunity")
    spec = mongodb["spec"]
    assert spec["type"] == "ReplicaSet"
    assert spec["members"] == 3
    assert spec["security"]["authentication"]["modes"] == ["SCRAM"]
    users = {u["name"]: u for u in spec["users"]}
    assert set(users) == {*SERVICES, "backup"}
    for name, deployment in deployments(chart):
        database = settings_of(name).model_fields["mongodb_database"].default
        assert services[name]["database"] == database
        assert users[name]["roles"] == [{"name": "readWrite", "db": database}], "its own database only"
        url = env_of(chart, deployment)[f"{name.upper()}_MONGODB_URL"]["secretKeyRef"]
        assert url == {"name": users[name]["connectionStringSecretName"], "key": "connectionString.standard"}
    assert len({u["connectionStringSecretName"] for u in users.values()}) == len(users)


# --- Network policies -------------------------------------------------------------------------------------


def test_each_service_may_reach_only_dns_kafka_mongodb_and_for_notification_the_outside() -> None:
    chart = defaults()
    policies = {p["metadata"]["name"]: p for p in chart.of("NetworkPolicy")}
    for name, deployment in deployments(chart):
        policy = policies[deployment["metadata"]["name"]]
        assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        inside = {53, 9092, 27017}
        assert ports == inside if name != "notification" else ports > inside, name
        [ingress] = policy["spec"]["ingress"]
        assert ingress["ports"] == [{"protocol": "TCP", "port": container(deployment)["ports"][0]["containerPort"]}]
    [kafka] = chart.of("Kafka")
    [internal] = [entry for entry in kafka["spec"]["kafka"]["listeners"] if entry["type"] == "internal"]
    peers = json.dumps(internal["networkPolicyPeers"])
    assert all(service in peers for service in SERVICES), "only the services (and KEDA) reach the listener"
