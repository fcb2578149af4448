"""Talking to the broker: connecting with a deadline, reading and reconciling ACLs, creating topics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from provision.acls import AclBinding, Operation, PatternType, Permission, ResourceType
from shared.logging import get_logger
from shared.messaging import ensure_topics
from shared.topics import CATALOGUE, Topic

if TYPE_CHECKING:
    from provision.acls import AclFile
    from provision.settings import ProvisionSettings

log = get_logger("provision")


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
