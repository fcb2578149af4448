"""Prepares a Kafka cluster for Lindungi, then exits: `python -m provision`.

The compose one-shot job calls it before any service starts (natively, the services create their topics
themselves). It waits for the broker to answer (up to a deadline), creates the catalogue's missing topics with
their partitions and configs, and, given the production ACL file (`--acls deploy/compose/prod/acls.toml`),
also creates each partner's outcome topic and makes the broker's ACLs equal to the file. Every step is
idempotent, so it runs on every start.

Kafka ACLs cannot filter records by key, so a partner reads "its own outcomes" from a topic of its own,
`lindungi.partner.<id>.outcomes.v1`, to which registration copies each outcome of that partner's requests.
The ACL file is TOML (read with the standard library) because the runtime image has no YAML parser.

A deploy-time tool, not part of the contract between services, hence its place under deploy/ (installed as
the top-level package `provision`). The modules: `acls` (the ACL file, what it grants, and the plan a human
reviews), `broker` (talking to the broker), `settings`, and `cli` (the command line).
"""

from provision.acls import (
    CLUSTER_RESOURCE,
    PARTNER_ID,
    AclBinding,
    AclFile,
    Grant,
    Operation,
    PartnerRules,
    PatternType,
    Permission,
    PrincipalGrants,
    ResourceType,
    plan,
)
from provision.broker import ProvisionError, connect, reconcile_acls
from provision.cli import main
from provision.settings import ProvisionSettings

__all__ = [
    "CLUSTER_RESOURCE",
    "PARTNER_ID",
    "AclBinding",
    "AclFile",
    "Grant",
    "Operation",
    "PartnerRules",
    "PatternType",
    "Permission",
    "PrincipalGrants",
    "ProvisionError",
    "ProvisionSettings",
    "ResourceType",
    "connect",
    "main",
    "plan",
    "reconcile_acls",
]
