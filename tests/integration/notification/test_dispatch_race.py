"""Two dispatchers, each with its own MongoDB client, racing for the same pending deliveries on the real
MongoDB-protocol server, sending through a real SMTP server and a real HTTP receiver: every delivery is sent
exactly once, settled once with one attempt, and reported once.

Each lane takes 25 deliveries at a time, so most deliveries are left to the sweepers, and both sweepers
(every 50 ms) read the same oldest pending deliveries from the ledger and claim them in groups
(`ledger.GroupCommit`): each side's `update_many` names ids the other side is claiming at the same moment.
This is the test of the claim's filter being evaluated atomically per document (MongoDB; FerretDB with the
local stack's write lock).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.notification.channels import EmailChannel, SmtpConfig, SmtpPool, WebhookChannel
from services.notification.dispatch import Dispatcher, Lane, RetryPolicy
from services.notification.domain.messages import Audience, PartnerWebhook
from services.notification.service import NewDelivery
from services.notification.store import MongoNotificationStore
from shared.crypto import Sealer, new_key
from shared.events import CloudEvent, DeliveryChannel
from tests.integration.notification.conftest import eventually

if TYPE_CHECKING:
    from tests.integration.notification.conftest import Receiver, SmtpSink

pytestmark = pytest.mark.integration

PARTNER = "bogor-hr"
PARTNER_SECRET = "bogor-hr-signing-secret-0123456789"  # noqa: S105 - the test receiver's secret
POLICY = RetryPolicy(max_attempts=3, initial=0.2, maximum=0.5, jitter=0.1, timeout=5, lease=30)
EMAILS, WEBHOOKS = 150, 50
CAPACITY = 25


def intents(unique: str, webhook: str) -> list[NewDelivery]:
    def entry(n: int, channel: DeliveryChannel, address: str, payload: str | None) -> NewDelivery:
        audience = Audience.PARTNER if channel is DeliveryChannel.WEBHOOK else Audience.WORKER
        return NewDelivery(
            delivery_id=f"race-{unique}-{channel.value}-{n}",
            source_event_id=f"event-{n}",
            kind="request.rejected" if payload else "participant.registered",
            audience=audience,
            recipient_id=PARTNER if payload else None,
            channel=channel,
            address=address,
            recipient_display="masked",
            language="id",
            subject=f"Pemberitahuan {n}",
            text="Anda terdaftar sebagai peserta BPJS Ketenagakerjaan.",
            payload=payload,
        )

    return [entry(n, DeliveryChannel.EMAIL, f"w{n}@example.org", None) for n in range(EMAILS)] + [
        entry(n, DeliveryChannel.WEBHOOK, f"{webhook}/{n}", json.dumps({"request_id": f"req-{n}"}))
        for n in range(WEBHOOKS)
    ]


async def test_two_dispatchers_racing_for_the_same_deliveries_send_each_once(
    mongodb_url: str, unique: str, mail: SmtpSink, web: Receiver
) -> None:
    database = f"notification_{unique}"
    clients: list[AsyncMongoClient[dict[str, Any]]] = [AsyncMongoClient(mongodb_url, tz_aware=True) for _ in range(2)]
    sealer = Sealer(new_key())
    stores = [MongoNotificationStore(client, database, sealer, secret_ttl=30) for client in clients]
    http = httpx.AsyncClient(timeout=POLICY.timeout)
    relay = SmtpConfig("127.0.0.1", mail.port, "none", None, None, "Lindungi <notifikasi@lindungi.local>", 5)
    pools = [SmtpPool(relay, 4) for _ in range(2)]
    reports: list[CloudEvent[Any]] = []

    async def publish(event: CloudEvent[Any], _key: str) -> None:
        reports.append(event)

    dispatchers = [
        Dispatcher(
            store,
            {
                DeliveryChannel.EMAIL: Lane(EmailChannel(pool), 4, CAPACITY),
                DeliveryChannel.WEBHOOK: Lane(WebhookChannel(http), 8, CAPACITY, per_address=2),
            },
            POLICY,
            publish,
            source=f"lindungi/notification-{n}",
            sweep_interval=0.05,
        )
        for n, (store, pool) in enumerate(zip(stores, pools, strict=True))
    ]
    try:
        await stores[0].create_indexes()
        await stores[0].save_partner(PartnerWebhook(PARTNER, web.url("/hr")), PARTNER_SECRET)
        entries = intents(unique, web.url("/hr"))
        pending = await stores[0].record_intents(entries)
        assert len(pending) == len(entries)

        # Each is offered every delivery, in opposite orders: each lane takes what it has room for, the
        # sweepers of both race for the rest.
        for delivery_id, channel in pending:
            dispatchers[0].submit(delivery_id, channel)
        for delivery_id, channel in reversed(pending):
            dispatchers[1].submit(delivery_id, channel)
        for dispatcher in dispatchers:
            dispatcher.start()
        await eventually(lambda: len(reports) >= len(entries), 120, "every delivery reported")
        await eventually(lambda: all(_idle(d) for d in dispatchers), 30, "both dispatchers done")

        received = Counter(str(message["To"]) for message in mail.messages)
        assert received == Counter({f"w{n}@example.org": 1 for n in range(EMAILS)})
        keys = Counter(r.headers["idempotency-key"] for r in web.requests)
        assert sorted(keys) == sorted(e.delivery_id for e in entries if e.channel is DeliveryChannel.WEBHOOK)
        assert set(keys.values()) == {1}
        assert Counter(event.data.delivery_id for event in reports) == Counter(e.delivery_id for e in entries)
        assert {event.type for event in reports} == {"id.lindungi.notification.delivered"}
        documents = [doc async for doc in clients[0][database]["deliveries"].find({})]
        assert {(doc["status"], doc["attempts"], doc["reported"]) for doc in documents} == {("sent", 1, True)}
        # Both took part (each lane's first 25 were disjoint): the race was a race, not one side doing it all.
        assert len({doc["owner"] for doc in documents}) == 2
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
        for pool in pools:
            await pool.close()
        await http.aclose()
        for client in clients:
            await client.close()


def _idle(dispatcher: Dispatcher) -> bool:
    return not any(lane.tasks for lane in dispatcher._lanes.values())
