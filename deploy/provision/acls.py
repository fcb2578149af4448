"""The ACL file (deploy/compose/prod/acls.toml): its model, the ACLs and partner topics it grants, and the plan.

Everything here is pure: the file is read with the standard library, and nothing talks to the broker.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.topics import ENROLLMENT_OUTCOMES, Topic, partner_topic

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

# Same rule as registration's partner ids: lowercase letters, digits and '-'. A '.' can therefore never
# appear in an id, which is what keeps the group prefix `partner.<id>.` of one partner from being a
# prefix of another partner's groups (with `partner-<id>-`, partner `kota` would match `kota-bogor`).
PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


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
    intake_topic: str = "lindungi.partner.{id}.requests.v1"
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

    def intake_topic_of(self, partner_id: str) -> str:
        return self.intake_topic.format(id=partner_id)

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
        """Each partner's request and outcome topics, created by this job (the broker does not auto-create
        topics). The request topic is configured as registration's own partner topics are (shared/topics.py)."""
        intake = [
            replace(partner_topic(partner_id, requests=True), name=self.partners.intake_topic_of(partner_id))
            for partner_id in self.partners.ids
        ]
        return intake + [
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
                AclBinding(
                    principal,
                    ResourceType.TOPIC,
                    PatternType.LITERAL,
                    rules.intake_topic_of(partner_id),
                    Operation.WRITE,
                ),
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
