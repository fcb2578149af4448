"""A seal-key rotation reaches notification's webhook signing secrets: sealed with key A, still opened with B
current and A previous, re-sealed by `python -m services.notification.reseal`, then opened with B alone.

The store is the service's own (`MongoNotificationStore`) on the real MongoDB-protocol server; the walk runs as
the command an operator runs."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.notification.domain.messages import Audience, Kind, PartnerWebhook, Stakeholder, Subscription
from services.notification.store import MongoNotificationStore
from shared.crypto import Sealer, new_key
from shared.events import DeliveryChannel
from tests.support import ROOT

pytestmark = pytest.mark.integration


async def reseal_command(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.notification.reseal",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_webhook_secrets_survive_a_seal_key_rotation(
    mongo: AsyncMongoClient[dict[str, Any]], service_env: dict[str, str], unique: str
) -> None:
    key_a, key_b = new_key(), new_key()
    database = f"notification_{unique}"
    with_a = MongoNotificationStore(mongo, database, Sealer(key_a))
    partners = {f"partner-{i}": f"partner-secret-{i}-of-some-length" for i in range(5)}
    for partner_id, secret in partners.items():
        await with_a.save_partner(PartnerWebhook(partner_id, f"https://example.org/{partner_id}"), secret)
    subscription = Subscription(
        subscription_id=f"sub-{unique}",
        name="Bappeda Kota Bogor",
        stakeholder=Stakeholder.REGIONAL_GOVERNMENT,
        scope="32.71",
        kinds=frozenset({Kind.COVERAGE_MILESTONE}),
        channel=DeliveryChannel.WEBHOOK,
        address="https://example.org/bappeda",
    )
    await with_a.save_subscription(subscription, "subscriber-secret-of-some-length")
    without_webhook = dataclasses.replace(subscription, subscription_id=f"mail-{unique}")
    await with_a.save_subscription(without_webhook, None)  # nothing sealed: nothing to re-seal

    rotating = MongoNotificationStore(mongo, database, Sealer(key_b, [key_a]))
    for partner_id, secret in partners.items():
        assert await rotating.signing_secret(Audience.PARTNER, partner_id) == secret

    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("SEAL_KEYS_PREVIOUS")},
        **service_env,
        "NOTIFICATION_MONGODB_DATABASE": database,
        "LINDUNGI_SEAL_KEY": key_b,
        "LINDUNGI_SEAL_KEYS_PREVIOUS": key_a,
    }
    code, output = await reseal_command(env, "--check")
    assert code == 1, output
    code, output = await reseal_command(env)
    assert code == 0, output
    assert "partners (webhook secrets): scanned 5, current 0, stale 5, resealed 5" in output
    assert "subscriptions (webhook secrets): scanned 1, current 0, stale 1, resealed 1" in output

    # The old key can go: everything opens with B alone, and the walk finds nothing left.
    with_b = MongoNotificationStore(mongo, database, Sealer(key_b))
    for partner_id, secret in partners.items():
        assert await with_b.signing_secret(Audience.PARTNER, partner_id) == secret
    assert await with_b.signing_secret(Audience.SUBSCRIBER, subscription.subscription_id) == (
        "subscriber-secret-of-some-length"
    )
    code, output = await reseal_command({**env, "LINDUNGI_SEAL_KEYS_PREVIOUS": ""}, "--check")
    assert code == 0, output
    assert "finished" in output
