"""The production ACLs (deploy/compose/prod/acls.toml), read through the same code the provision job uses.

What must hold: a partner may only WRITE the intake topic and READ its own outcome topic and its own
consumer groups, never another partner's; each service reads and writes only the topics the catalogue
says it consumes and produces, within its own consumer groups; nobody but registration reads the intake
(the NIK in clear); and every principal has a SCRAM credential and nothing else does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from deploy_files import ROOT, interpolate, load
from hypothesis import given
from hypothesis import strategies as st

from provision import (
    PARTNER_ID,
    AclBinding,
    AclFile,
    Operation,
    PartnerRules,
    PatternType,
    Permission,
    ResourceType,
)
from shared.topics import CATALOGUE, ENROLLMENT_REQUESTS

if TYPE_CHECKING:
    from pathlib import Path

ACLS = ROOT / "deploy" / "compose" / "prod" / "acls.toml"
KAFKA_CONF = ROOT / "deploy" / "compose" / "kafka"
SERVICES = ("registration", "reporting", "notification")
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")  # Kafka's rule for topic names
IMPLIES_DESCRIBE = {Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER, Operation.DESCRIBE}


@pytest.fixture(scope="module")
def acl_file() -> AclFile:
    return AclFile.load(ACLS)


@pytest.fixture(scope="module")
def bindings(acl_file: AclFile) -> frozenset[AclBinding]:
    return acl_file.bindings()


def allowed(
    acls: frozenset[AclBinding], principal: str, operation: Operation, resource_type: ResourceType, name: str
) -> bool:
    """Kafka's StandardAuthorizer for ALLOW-only ACLs: literal (or the `*` wildcard) and prefixed matches;
    ALL allows everything; READ, WRITE, DELETE and ALTER imply DESCRIBE."""

    def matches(acl: AclBinding) -> bool:
        if acl.resource_type != resource_type or acl.principal not in {principal, "User:*"}:
            return False
        if acl.pattern_type is PatternType.PREFIXED:
            return name.startswith(acl.resource_name)
        return acl.resource_name in {name, "*"}

    def grants(acl: AclBinding) -> bool:
        return (
            acl.operation in {operation, Operation.ALL}
            or (operation is Operation.DESCRIBE and acl.operation in IMPLIES_DESCRIBE)
            or (operation is Operation.DESCRIBE_CONFIGS and acl.operation is Operation.ALTER_CONFIGS)
        )

    assert all(a.permission is Permission.ALLOW for a in acls), "the model has no DENY rules"
    return any(matches(a) and grants(a) for a in acls)


def of(acls: frozenset[AclBinding], principal: str) -> set[tuple[Any, ...]]:
    return {(a.resource_type, a.pattern_type, a.resource_name, a.operation) for a in acls if a.principal == principal}


# --- Partners -------------------------------------------------------------------------------------------


def test_a_partner_may_only_submit_and_read_its_own_outcomes(
    acl_file: AclFile, bindings: frozenset[AclBinding]
) -> None:
    rules = acl_file.partners
    assert rules.ids, "the example partners"
    for partner in rules.ids:
        assert of(bindings, f"User:{rules.principal_of(partner)}") == {
            # Its own request topic, never the shared intake topic: the topic proves who sent a request.
            (ResourceType.TOPIC, PatternType.LITERAL, f"lindungi.partner.{partner}.requests.v1", Operation.WRITE),
            (
                ResourceType.TOPIC,
                PatternType.LITERAL,
                f"lindungi.partner.{partner}.outcomes.v1",
                Operation.READ,
            ),
            (ResourceType.GROUP, PatternType.PREFIXED, rules.group_prefix_of(partner), Operation.READ),
        }


def test_a_partner_can_neither_read_nor_join_another_partners(
    acl_file: AclFile, bindings: frozenset[AclBinding]
) -> None:
    rules = acl_file.partners
    for partner in rules.ids:
        principal = f"User:{rules.principal_of(partner)}"
        for topic in [t.name for t in CATALOGUE] + [rules.outcome_topic_of(p) for p in rules.ids if p != partner]:
            assert not allowed(bindings, principal, Operation.READ, ResourceType.TOPIC, topic), (
                partner,
                topic,
            )
        for other in (p for p in rules.ids if p != partner):
            group = rules.group_prefix_of(other) + "sync"
            assert not allowed(bindings, principal, Operation.READ, ResourceType.GROUP, group), (
                partner,
                other,
            )
        assert not allowed(bindings, principal, Operation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster")


partner_ids = st.from_regex(PARTNER_ID, fullmatch=True)


@given(st.lists(partner_ids, min_size=2, max_size=5, unique=True))
def test_no_partner_id_can_reach_another_partners_topic_or_groups(ids: list[str]) -> None:
    # The rule for any ids registration accepts, e.g. `kota` and `kota-bogor`: a group prefix
    # `partner-kota-` would have matched `partner-kota-bogor-…`; `partner.kota.` cannot.
    acls = AclFile(super_user="admin", principals={}, partners=PartnerRules(ids=tuple(ids))).bindings()
    rules = PartnerRules(ids=tuple(ids))
    for partner in ids:
        principal = f"User:{rules.principal_of(partner)}"
        for other in (p for p in ids if p != partner):
            topic, group = rules.outcome_topic_of(other), rules.group_prefix_of(other) + "consumer"
            assert not allowed(acls, principal, Operation.READ, ResourceType.TOPIC, topic)
            assert not allowed(acls, principal, Operation.READ, ResourceType.GROUP, group)
        assert TOPIC_NAME.match(rules.outcome_topic_of(partner))


def test_partner_ids_follow_registrations_rule() -> None:
    decisions = pytest.importorskip("services.registration.domain.decisions")
    assert decisions.Partner.model_fields["partner_id"].metadata[0].pattern == PARTNER_ID.pattern


def test_a_partner_id_that_could_confuse_the_prefixes_is_refused() -> None:
    for bad in ("kota.bogor", "Kota", "kota_bogor", "-kota", "k"):
        with pytest.raises(ValueError, match="partner ids"):
            PartnerRules(ids=(bad,))


def test_no_partner_may_write_the_intake_topic_or_another_partners(
    acl_file: AclFile, bindings: frozenset[AclBinding]
) -> None:
    rules = acl_file.partners
    for partner in rules.ids:
        principal = f"User:{rules.principal_of(partner)}"
        assert not allowed(bindings, principal, Operation.WRITE, ResourceType.TOPIC, ENROLLMENT_REQUESTS.name)
        for other in (p for p in rules.ids if p != partner):
            assert not allowed(bindings, principal, Operation.WRITE, ResourceType.TOPIC, rules.intake_topic_of(other))


def test_each_partner_gets_a_request_and_an_outcome_topic(acl_file: AclFile) -> None:
    topics = {t.name: t for t in acl_file.partner_topics()}
    ids = acl_file.partners.ids
    assert set(topics) == {f"lindungi.partner.{p}.{kind}.v1" for p in ids for kind in ("requests", "outcomes")}
    for topic in topics.values():
        assert topic.config["cleanup.policy"] == "delete"
        assert int(topic.config["retention.ms"]) > 0, "bounded: partners catch up, they do not archive"


# --- Services and tools -----------------------------------------------------------------------------------


def test_each_service_reads_and_writes_exactly_its_catalogue_topics(bindings: frozenset[AclBinding]) -> None:
    for service in SERVICES:
        expected = {
            (ResourceType.TOPIC, PatternType.LITERAL, t.name, Operation.READ)
            for t in CATALOGUE
            if service in t.consumers
        } | {
            (ResourceType.TOPIC, PatternType.LITERAL, t.name, Operation.WRITE)
            for t in CATALOGUE
            if service in t.producers
        }
        if service == "registration":
            # The partners' request topics, read by pattern; copies of outcomes to their outcome topics.
            expected.add((ResourceType.TOPIC, PatternType.PREFIXED, "lindungi.partner.", Operation.READ))
            expected.add((ResourceType.TOPIC, PatternType.PREFIXED, "lindungi.partner.", Operation.WRITE))
        topics = {acl for acl in of(bindings, f"User:{service}") if acl[0] is ResourceType.TOPIC}
        assert topics == expected, service


def test_each_service_uses_only_its_own_consumer_groups(bindings: frozenset[AclBinding]) -> None:
    for service in SERVICES:
        groups = {acl for acl in of(bindings, f"User:{service}") if acl[0] is ResourceType.GROUP}
        assert groups == {(ResourceType.GROUP, PatternType.PREFIXED, f"lindungi-{service}", Operation.READ)}
        for other in (s for s in SERVICES if s != service):
            assert not allowed(bindings, f"User:{service}", Operation.READ, ResourceType.GROUP, f"lindungi-{other}")
        # The group ids the services use by default, including notification's second group.
        group = f"lindungi-{service}"
        assert allowed(bindings, f"User:{service}", Operation.READ, ResourceType.GROUP, group)
    assert allowed(
        bindings, "User:notification", Operation.READ, ResourceType.GROUP, "lindungi-notification-aggregates"
    )


def test_services_have_no_cluster_rights_and_cannot_create_or_alter(bindings: frozenset[AclBinding]) -> None:
    for service in SERVICES:
        operations = {acl[3] for acl in of(bindings, f"User:{service}")}
        assert operations <= {Operation.READ, Operation.WRITE}, service
        assert not any(acl[0] is ResourceType.CLUSTER for acl in of(bindings, f"User:{service}"))


def test_only_registration_reads_the_topics_with_personal_data(
    acl_file: AclFile, bindings: frozenset[AclBinding]
) -> None:
    principals = {a.principal for a in bindings}
    for topic in (t for t in CATALOGUE if t.personal_data):
        readers = {p for p in principals if allowed(bindings, p, Operation.READ, ResourceType.TOPIC, topic.name)}
        assert readers == {"User:registration"}, topic.name
    assert acl_file.principals["operator"].role == "tool"


def test_every_principal_is_a_known_kind(acl_file: AclFile) -> None:
    assert {n for n, p in acl_file.principals.items() if p.role == "service"} == set(SERVICES)
    assert acl_file.super_user not in acl_file.principals


# --- The ACL file, the broker and the credentials agree ---------------------------------------------------


def principals(acl_file: AclFile) -> set[str]:
    return set(acl_file.principals) | {acl_file.partners.principal_of(p) for p in acl_file.partners.ids}


def scram_users(prod: dict[str, Any]) -> dict[str, str]:
    """name -> the .env variable holding its password, from the kafka-credentials job."""
    text = prod["services"]["kafka-credentials"]["environment"]["SCRAM_USERS"]
    pairs = re.findall(r"(\S+?)=\$\{([A-Z0-9_]+):\?[^}]+\}", text)
    assert len(pairs) == len(re.findall(r"\S+?=\$\{", text)), "every password is a required variable"
    return dict(pairs)


def test_every_principal_and_only_they_get_a_scram_credential(acl_file: AclFile) -> None:
    users = scram_users(load(ROOT / "docker-compose.prod.yml"))
    assert set(users) == principals(acl_file), "kafka-credentials job vs acls.toml"
    assert len(set(users.values())) == len(users), "one password per principal"


def test_each_client_authenticates_as_its_own_principal(acl_file: AclFile) -> None:
    prod = load(ROOT / "docker-compose.prod.yml")
    users = scram_users(prod)
    admin_password = (
        "${" + re.findall(r"\$\{(\w+):\?", prod["services"]["kafka"]["environment"]["KAFKA_ADMIN_PASSWORD"])[0]
    )
    for name, expected_user in (*((s, s) for s in SERVICES), ("provision", acl_file.super_user)):
        env = prod["services"][name]["environment"]
        assert env["LINDUNGI_KAFKA_SASL_USERNAME"] == expected_user, name
        password = env["LINDUNGI_KAFKA_SASL_PASSWORD"]
        if expected_user == acl_file.super_user:
            assert password.startswith(admin_password + ":?")
        else:
            assert f"${{{users[expected_user]}:?" in password, name
    jaas = prod["services"]["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_PROPERTIES_SASL_JAAS_CONFIG"]
    assert 'username="operator"' in jaas
    assert f"${{{users['operator']}:?" in jaas


def properties(*files: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for path in files:
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def test_the_broker_denies_what_no_acl_allows_and_knows_the_super_user(acl_file: AclFile) -> None:
    prod = properties(KAFKA_CONF / "base.properties", KAFKA_CONF / "prod.properties")
    assert prod["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert prod["allow.everyone.if.no.acl.found"] == "false"
    assert prod["super.users"] == f"User:{acl_file.super_user}"
    assert prod["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    listeners = dict(item.split(":") for item in prod["listener.security.protocol.map"].split(","))
    assert set(listeners.values()) == {"SASL_PLAINTEXT"}, "no listener without authentication"
    assert prod["auto.create.topics.enable"] == "false"


def test_both_profiles_listen_where_the_compose_file_says() -> None:
    compose = load(ROOT / "docker-compose.yml")
    bootstrap = compose["x-service-environment"]["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"]
    base = properties(KAFKA_CONF / "base.properties")
    assert f"INTERNAL://@INTERNAL_HOST@:{bootstrap.split(':')[1]}" in base["advertised.listeners"]
    assert bootstrap.split(":")[0] == "kafka" == next(iter(s for s in compose["services"] if s == "kafka"))
    published = interpolate(compose["services"]["kafka"]["ports"][0], {})
    assert published.endswith(":9092")
    assert "EXTERNAL://0.0.0.0:9092" in base["listeners"]
    for profile in ("dev", "prod"):
        mapping = properties(KAFKA_CONF / f"{profile}.properties")["listener.security.protocol.map"]
        assert {item.split(":")[0] for item in mapping.split(",")} == {"INTERNAL", "EXTERNAL", "CONTROLLER"}
