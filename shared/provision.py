"""Prepares a Kafka cluster for Lindungi, then exits: `python -m shared.provision`.

The compose one-shot job and the native run call it before any service starts. It waits for the broker to
answer (up to a deadline), creates the catalogue's missing topics with their partitions and configs, and,
given the production ACL file (`--acls deploy/compose/prod/acls.toml`), also creates each partner's outcome
topic and makes the broker's ACLs equal to the file. Every step is idempotent, so it runs on every start.

Kafka ACLs cannot filter records by key, so a partner reads "its own outcomes" from a topic of its own,
`lindungi.partner.<id>.outcomes.v1`, to which registration copies each outcome of that partner's requests.
The ACL file is TOML (read with the standard library) because the runtime image has no YAML parser.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tomllib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging import configure_logging, get_logger
from shared.messaging import ensure_topics
from shared.topics import CATALOGUE, ENROLLMENT_OUTCOMES, ENROLLMENT_REQUESTS, Topic

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

log = get_logger("provision")

# Same rule as registration's partner ids: lowercase letters, digits and '-'. A '.' can therefore never
# appear in an id, which is what keeps the group prefix `partner.<id>.` of one partner from being a
# prefix of another partner's groups (with `partner-<id>-`, partner `kota` would match `kota-bogor`).
PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class ProvisionSettings(BaseSettings):
    """How to reach the broker: the same `LINDUNGI_KAFKA_*` variables the services read (shared/settings.py),
    without the secrets a service needs and this job does not."""

    model_config = SettingsConfigDict(env_prefix="LINDUNGI_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @model_validator(mode="after")
    def _credentials_with_sasl(self) -> Self:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError("SASL needs LINDUNGI_KAFKA_SASL_USERNAME and LINDUNGI_KAFKA_SASL_PASSWORD")
        return self

    def client_options(self) -> dict[str, Any]:
        """aiokafka client keyword arguments for the security settings; empty for plain text."""
        options: dict[str, Any] = {}
        if self.kafka_security_protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = self.kafka_security_protocol
        if self.kafka_security_protocol == "SASL_SSL":
            options["ssl_context"] = create_ssl_context()  # the system's certificate authorities
        assert self.kafka_sasl_password is not None  # noqa: S101 - checked by the validator above
        options["sasl_mechanism"] = self.kafka_sasl_mechanism
        options["sasl_plain_username"] = self.kafka_sasl_username
        options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options


# --- The ACL file ---------------------------------------------------------------------------------------


class ResourceType(IntEnum):
    """Kafka protocol codes (org.apache.kafka.common.resource.ResourceType)."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    ANY = 1
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka protocol codes (org.apache.kafka.common.acl.AclOperation)."""

    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(IntEnum):
    ANY = 1
    DENY = 2
    ALLOW = 3


CLUSTER_RESOURCE = "kafka-cluster"  # the one name a CLUSTER resource has


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL: `principal` may (or may not) do `operation` on a resource, from `host`."""

    principal: str
    resource_type: ResourceType
    pattern_type: PatternType
    resource_name: str
    operation: Operation
    permission: Permission = Permission.ALLOW
    host: str = "*"

    def __str__(self) -> str:
        pattern = "" if self.pattern_type is PatternType.LITERAL else f" ({self.pattern_type.name.lower()})"
        verb = "may" if self.permission is Permission.ALLOW else "may NOT"
        return (
            f"{self.principal} {verb} {self.operation.name} {self.resource_type.name.lower()} "
            f"{self.resource_name}{pattern}"
        )


class Grant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    pattern: Literal["literal", "prefixed"] = "literal"
    operations: tuple[Literal["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "CREATE"], ...] = Field(min_length=1)


class PrincipalGrants(BaseModel):
    """What one principal (a service or an operator's tool) may do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["service", "tool"]
    topics: tuple[Grant, ...] = ()
    groups: tuple[Grant, ...] = ()
    cluster: tuple[Literal["DESCRIBE", "DESCRIBE_CONFIGS"], ...] = ()


class PartnerRules(BaseModel):
    """Every partner gets the same three rights, named from its id with these templates (`{id}`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ids: tuple[str, ...]
    principal: str = "partner.{id}"
    intake_topic: str = ENROLLMENT_REQUESTS.name
    outcome_topic: str = "lindungi.partner.{id}.outcomes.v1"
    group_prefix: str = "partner.{id}."
    outcome_topic_partitions: int = Field(default=3, ge=1)
    outcome_topic_config: dict[str, str] = Field(default_factory=dict)

    @field_validator("ids")
    @classmethod
    def _well_formed(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        bad = [i for i in ids if not PARTNER_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"partner ids must match {PARTNER_ID.pattern}: {bad}")
        if len(set(ids)) != len(ids):
            raise ValueError("a partner id is listed twice")
        return ids

    def principal_of(self, partner_id: str) -> str:
        return self.principal.format(id=partner_id)

    def outcome_topic_of(self, partner_id: str) -> str:
        return self.outcome_topic.format(id=partner_id)

    def group_prefix_of(self, partner_id: str) -> str:
        return self.group_prefix.format(id=partner_id)


class AclFile(BaseModel):
    """The whole ACL truth of the production profile (deploy/compose/prod/acls.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    super_user: str
    principals: dict[str, PrincipalGrants]
    partners: PartnerRules

    @classmethod
    def load(cls, path: Path) -> AclFile:
        with path.open("rb") as f:
            return cls.model_validate(tomllib.load(f))

    def partner_topics(self) -> list[Topic]:
        """One outcome topic per partner, created by this job (the broker does not auto-create topics)."""
        return [
            Topic(
                name=self.partners.outcome_topic_of(partner_id),
                key=ENROLLMENT_OUTCOMES.key,
                partitions=self.partners.outcome_topic_partitions,
                config=dict(self.partners.outcome_topic_config),
                producers=("registration",),
                consumers=(f"partner {partner_id}",),
                events=ENROLLMENT_OUTCOMES.events,
                description=f"Copies of the outcomes of partner {partner_id}'s requests, for it alone.",
            )
            for partner_id in self.partners.ids
        ]

    def bindings(self) -> frozenset[AclBinding]:
        """Every ACL the file grants; the broker should hold exactly these."""
        acls: set[AclBinding] = set()
        for name, grants in self.principals.items():
            principal = f"User:{name}"
            for resource_type, entries in (
                (ResourceType.TOPIC, grants.topics),
                (ResourceType.GROUP, grants.groups),
            ):
                for grant in entries:
                    pattern = PatternType.PREFIXED if grant.pattern == "prefixed" else PatternType.LITERAL
                    acls.update(
                        AclBinding(principal, resource_type, pattern, grant.name, Operation[op])
                        for op in grant.operations
                    )
            acls.update(
                AclBinding(principal, ResourceType.CLUSTER, PatternType.LITERAL, CLUSTER_RESOURCE, Operation[op])
                for op in grants.cluster
            )
        rules = self.partners
        for partner_id in rules.ids:
            principal = f"User:{rules.principal_of(partner_id)}"
            acls |= {
                AclBinding(principal, ResourceType.TOPIC, PatternType.LITERAL, rules.intake_topic, Operation.WRITE),
                AclBinding(
                    principal,
                    ResourceType.TOPIC,
                    PatternType.LITERAL,
                    rules.outcome_topic_of(partner_id),
                    Operation.READ,
                ),
                AclBinding(
                    principal,
                    ResourceType.GROUP,
                    PatternType.PREFIXED,
                    rules.group_prefix_of(partner_id),
                    Operation.READ,
                ),
            }
        return frozenset(acls)


# --- Talking to the broker ------------------------------------------------------------------------------


class ProvisionError(RuntimeError):
    pass


async def connect(settings: ProvisionSettings, max_wait: float) -> AIOKafkaClient:
    """A bootstrapped client, retried with backoff until the broker answers or `max_wait` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    delay = 0.5
    while True:
        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="lindungi-provision",
            request_timeout_ms=10_000,
            **settings.client_options(),
        )
        remaining = deadline - loop.time()
        try:
            await asyncio.wait_for(client.bootstrap(), max(remaining, 0.1))
        except (KafkaError, OSError, TimeoutError) as error:
            await client.close()
            remaining = deadline - loop.time()
            if remaining <= 0:
                where = settings.kafka_bootstrap_servers
                raise ProvisionError(f"no broker answered at {where} within {max_wait:.0f}s: {error}") from error
            log.info("waiting for the broker", bootstrap=settings.kafka_bootstrap_servers, error=str(error))
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
        else:
            return client


async def current_acls(client: AIOKafkaClient) -> frozenset[AclBinding]:
    request = DescribeAclsRequest(
        resource_type=ResourceType.ANY,
        resource_name=None,
        resource_pattern_type_filter=PatternType.ANY,
        principal=None,
        host=None,
        operation=Operation.ANY,
        permission_type=Permission.ANY,
    )
    response = await client.send(client.get_random_node(), request)
    if response.error_code != 0:
        raise ProvisionError(f"describing ACLs failed: {response.error_code} {response.error_message}")
    return frozenset(
        AclBinding(
            principal=principal,
            resource_type=ResourceType(resource_type),
            pattern_type=PatternType(pattern_type),
            resource_name=resource_name,
            operation=Operation(operation),
            permission=Permission(permission),
            host=host,
        )
        for resource_type, resource_name, pattern_type, entries in response.resources
        for principal, host, operation, permission in entries
    )


def _fields(acl: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    return (
        acl.resource_type,
        acl.resource_name,
        acl.pattern_type,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission,
    )


async def add_acl(client: AIOKafkaClient, acl: AclBinding) -> None:
    response = await client.send(client.get_random_node(), CreateAclsRequest(*_fields(acl)))
    for code, message in response.creation_responses:
        if code != 0:
            raise ProvisionError(f"adding ACL '{acl}' failed: {code} {message}")


async def remove_acl(client: AIOKafkaClient, acl: AclBinding) -> None:
    response = await client.send(client.get_random_node(), DeleteAclsRequest(*_fields(acl)))
    for code, message, _matching in response.filter_responses:
        if code != 0:
            raise ProvisionError(f"removing ACL '{acl}' failed: {code} {message}")


async def reconcile_acls(client: AIOKafkaClient, desired: frozenset[AclBinding]) -> tuple[int, int]:
    """Make the broker's ACLs equal to `desired`: add the missing, remove the rest. Returns (added, removed).

    Removal is what revokes a partner that was taken out of the file, so the file stays the whole truth.
    """
    actual = await current_acls(client)
    missing, extra = sorted(desired - actual), sorted(actual - desired)
    for acl in missing:
        await add_acl(client, acl)
        log.info("acl added", acl=str(acl))
    for acl in extra:
        await remove_acl(client, acl)
        log.warning("acl removed: not in the ACL file", acl=str(acl))
    return len(missing), len(extra)


async def provision(settings: ProvisionSettings, *, acl_file: AclFile | None, max_wait: float) -> None:
    client = await connect(settings, max_wait)
    try:
        if acl_file is not None:
            # ACLs first: a broker without an authorizer (the development profile) fails here, before any
            # partner topic is created on it.
            added, removed = await reconcile_acls(client, acl_file.bindings())
            log.info("acls ready", added=added, removed=removed, total=len(acl_file.bindings()))
        topics: list[Topic] = [*CATALOGUE, *(acl_file.partner_topics() if acl_file else ())]
        created = await ensure_topics(settings.kafka_bootstrap_servers, topics, **settings.client_options())
        log.info("topics ready", created=created, total=len(topics))
    finally:
        await client.close()


def plan(topics: Sequence[Topic], acls: Iterable[AclBinding]) -> str:
    """What `provision` would make true, for a human to review (no broker needed)."""
    lines = ["topics:"]
    lines += [
        f"  {t.name}  partitions={t.partitions} {' '.join(f'{k}={v}' for k, v in t.config.items())}" for t in topics
    ]
    acl_lines = [f"  {acl}" for acl in sorted(acls)]
    if acl_lines:
        lines += ["acls:", *acl_lines]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.provision",
        description="Create Lindungi's Kafka topics (and, with --acls, partner topics and ACLs), then exit.",
    )
    parser.add_argument("--bootstrap", help="host:port[,...]; default LINDUNGI_KAFKA_BOOTSTRAP_SERVERS")
    parser.add_argument("--acls", type=Path, help="the production ACL file (TOML): partner topics and ACLs")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the broker")
    parser.add_argument("--plan", action="store_true", help="print the topics and ACLs, touch nothing")
    args = parser.parse_args(argv)

    overrides = {"kafka_bootstrap_servers": args.bootstrap} if args.bootstrap else {}
    settings = ProvisionSettings(**overrides)
    acl_file = AclFile.load(args.acls) if args.acls else None
    if args.plan:
        topics = [*CATALOGUE, *(acl_file.partner_topics() if acl_file else ())]
        print(plan(topics, acl_file.bindings() if acl_file else ()))  # noqa: T201 - the plan is the output
        return 0
    configure_logging("provision", settings.log_level, settings.log_format)
    try:
        asyncio.run(provision(settings, acl_file=acl_file, max_wait=args.timeout))
    except (RuntimeError, KafkaError) as error:  # ProvisionError, or a broker's refusal while creating topics
        log.error("provisioning failed", error=str(error))  # noqa: TRY400 - the message is the whole story
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
