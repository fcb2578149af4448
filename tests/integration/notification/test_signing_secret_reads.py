"""Webhook signing secrets are read once per partner however many deliveries ask at once, and a change made
through the store applies to every lookup after it, even while an older read is still in flight.

The store is the service's own (`MongoNotificationStore`) on the real MongoDB-protocol server; the reads are
counted by the driver's command monitoring, as the server sees them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandFailedEvent, CommandListener, CommandStartedEvent, CommandSucceededEvent

from services.notification.domain.messages import Audience, PartnerWebhook
from services.notification.store import MongoNotificationStore
from shared.crypto import Sealer, new_key

pytestmark = pytest.mark.integration


class PartnerReads(CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "partners":
            self.count += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


async def test_concurrent_deliveries_share_one_read_per_secret(mongodb_url: str, unique: str) -> None:
    reads = PartnerReads()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True, event_listeners=[reads])
    try:
        store = MongoNotificationStore(client, f"notification_{unique}", Sealer(new_key()), secret_ttl=30)
        partners = {f"partner-{i}": f"partner-secret-{i}-of-some-length" for i in range(5)}
        for partner_id, secret in partners.items():
            await store.save_partner(PartnerWebhook(partner_id, f"https://example.org/{partner_id}"), secret)

        # 200 deliveries claimed together, as a batch of outcomes gives them: 40 per partner.
        asked = [f"partner-{i % 5}" for i in range(200)]
        opened = await asyncio.gather(*(store.signing_secret(Audience.PARTNER, p) for p in asked))
        assert opened == [partners[p] for p in asked]
        assert reads.count == 5

        # A rotation through this store while lookups are in flight: every lookup after it sees the new one.
        before = reads.count
        store._secrets.clear()
        in_flight = [asyncio.create_task(store.signing_secret(Audience.PARTNER, "partner-0")) for _ in range(10)]
        await asyncio.sleep(0)  # the shared read has started
        await store.save_partner(PartnerWebhook("partner-0", "https://example.org/partner-0"), "rotated-secret-0")
        assert await store.signing_secret(Audience.PARTNER, "partner-0") == "rotated-secret-0"
        assert set(await asyncio.gather(*in_flight)) <= {partners["partner-0"], "rotated-secret-0"}
        assert reads.count - before <= 2
    finally:
        await client.drop_database(f"notification_{unique}")
        await client.close()
