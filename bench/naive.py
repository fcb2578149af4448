"""The baseline registration is measured against: a naive FastStream handler, one message at a time.

What a first version of the service would look like: for each request, validate it (pydantic and the very same
registration rules), look up the participation, insert (or replace) the participant document, publish the
outcome and await the broker's acknowledgement before the next message. It does less than the service (no
request log, no history, no idempotent replay) so the comparison flatters the baseline, not the service.

    python -m bench.naive     settings from BENCH_NAIVE_* (see `main`) and the LINDUNGI_* secrets
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from faststream import FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo import AsyncMongoClient

from services.registration.domain.decisions import (
    Context,
    Partner,
    decide,
    nik_of,
    participant_id,
    partner_id_of,
)
from services.registration.store import participant_document, participant_from_document
from shared.crypto import Sealer
from shared.events import partner_request_adapter
from shared.messaging import encode
from shared.regions import load_regions

WIB = ZoneInfo("Asia/Jakarta")


def build(env: dict[str, str]) -> FastStream:
    broker = KafkaBroker(env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"], client_id="lindungi-bench-naive")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["LINDUNGI_MONGODB_URL"], tz_aware=True)
    participants = client[env["BENCH_NAIVE_DATABASE"]]["participants"]
    outcomes_topic = env["BENCH_NAIVE_OUTCOMES_TOPIC"]
    secret = env["LINDUNGI_NIK_HASH_SECRET"].encode()  # as the service reads it: the text is the key
    sealer = Sealer(env["LINDUNGI_SEAL_KEY"])
    regions = load_regions()
    partners = {
        item["partner_id"]: Partner.model_validate(item)
        for item in json.loads(Path(env["BENCH_NAIVE_PARTNERS_FILE"]).read_text())
    }

    @broker.subscriber(
        env["BENCH_NAIVE_REQUESTS_TOPIC"], group_id=env["BENCH_NAIVE_GROUP_ID"], auto_offset_reset="earliest"
    )
    async def on_request(message: KafkaMessage) -> None:
        now = datetime.now(UTC)
        ctx = Context(today=now.astimezone(WIB).date(), regions=regions, nik_secret=secret, now=now)
        event = partner_request_adapter.validate_json(message.body)
        pid = participant_id(nik_of(event), event.data.segment, secret)
        stored = await participants.find_one({"_id": pid})
        current = participant_from_document(stored) if stored is not None else None
        decision = decide(event, partners.get(partner_id_of(event.source)), current, ctx)
        after = decision.participant
        if after is not None:
            document = participant_document(after)
            if after.nik is not None:
                document["nik_sealed"] = sealer.seal(after.nik.encode(), pid.encode())
            if current is None:
                await participants.insert_one(document)
            else:
                await participants.replace_one({"_id": pid}, document)
        value, headers = encode(decision.outcome)
        await broker.publish(value, outcomes_topic, key=decision.outcome_key.encode(), headers=headers)

    app = FastStream(broker)

    @app.after_shutdown
    async def close_mongo() -> None:
        await client.close()

    return app


def main() -> None:
    asyncio.run(build(dict(os.environ)).run())


if __name__ == "__main__":
    main()
