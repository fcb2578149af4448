"""Registration wiring: the only place clients are created.

python -m services.registration            run the service (HTTP on REGISTRATION_HTTP_PORT)
faststream run services.registration.app:app   the same through FastStream's CLI
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, HttpHandler, Request
from faststream.kafka import KafkaMessage
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from pymongo import AsyncMongoClient

from services.registration.domain.decisions import Context, Partner
from services.registration.handlers import Intake
from services.registration.settings import RegistrationSettings
from services.registration.store import MongoRegistrationStore
from shared.crypto import Sealer
from shared.events import DeadLetterRecorded, Outcome
from shared.messaging import ensure_topics, tolerant_parser
from shared.regions import load_regions
from shared.runtime import Probe, asgi_app, json_response, new_broker

log = structlog.get_logger("registration")

WIB = ZoneInfo("Asia/Jakarta")  # "today" for a rule is the date in Indonesia's western time zone


def create_app(settings: RegistrationSettings | None = None) -> AsgiFastStream:  # noqa: C901, PLR0915 - wiring
    settings = settings or RegistrationSettings()  # secrets come from the environment
    registry = CollectorRegistry()
    broker = new_broker(
        settings.kafka_bootstrap_servers,
        "registration",
        registry,
        security=settings.kafka_security(),
        enable_idempotence=True,  # no reordering or duplicates from producer retries
        linger_ms=5,
    )
    failures = Counter("registration_batch_failures", "batches that failed and were rewound", registry=registry)
    regions = load_regions()
    sealer = Sealer(settings.seal_key.get_secret_value())
    secret = settings.nik_hash_secret.get_secret_value().encode()
    state: dict[str, Any] = {}
    probe = Probe(broker, lambda: state.get("mongo"))

    def context() -> Context:
        now = datetime.now(UTC)
        return Context(today=now.astimezone(WIB).date(), regions=regions, nik_secret=secret, now=now)

    @broker.subscriber(
        settings.requests_topic,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        parser=tolerant_parser,
        title="enrollment requests",
        description="Partners' enroll / update / terminate / reactivate requests; one outcome each.",
    )
    async def on_requests(message: KafkaMessage) -> None:
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        try:
            await state["intake"].handle(records)
        except Exception:
            # Infrastructure trouble (store or broker down): rewind so nothing is skipped, back off, retry.
            failures.inc()
            log.exception("batch failed; rewinding", batch_size=len(records))
            await message.nack()
            await asyncio.sleep(1)
            return
        await message.ack()

    # Declared for the AsyncAPI document: what registration publishes (the handler publishes keyed records).
    broker.publisher(settings.outcomes_topic, title="enrollment outcomes", schema=Outcome)
    broker.publisher(settings.dead_letters_topic, title="dead letters", schema=DeadLetterRecorded)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
        state["mongo"] = client
        store = MongoRegistrationStore(client, settings.mongodb_database, sealer)
        await store.create_indexes()
        if settings.create_topics:
            await ensure_topics(settings.kafka_bootstrap_servers, **settings.kafka_client_options())
        if settings.partners_seed_file is not None:
            for item in json.loads(settings.partners_seed_file.read_text()):
                await store.upsert_partner(Partner.model_validate(item))
        state["store"] = store
        state["intake"] = Intake(settings, store, broker, sealer, context)
        probe.ready = True
        try:
            yield
        finally:
            probe.ready = False
            await client.close()

    async def partners(scope: Any, request: Request) -> AsgiResponse:
        """`GET /partners` lists partners; `POST /partners` creates or replaces one (validated)."""
        store: MongoRegistrationStore = state["store"]
        if scope["method"] == "POST" and settings.admin_token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {settings.admin_token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return json_response({"errors": [{"msg": "a valid admin token is required"}]}, 401)
        if scope["method"] == "GET":
            return json_response([p.model_dump(mode="json") for p in (await store.load_partners()).values()])
        try:
            partner = Partner.model_validate_json(await request.body())
        except ValidationError as error:
            return json_response({"errors": error.errors(include_url=False, include_input=False)}, 422)
        unknown = sorted(code for code in partner.regions if code not in regions)
        if unknown:
            return json_response({"errors": [{"msg": "unknown region codes", "codes": unknown}]}, 422)
        await store.upsert_partner(partner)
        return json_response(partner.model_dump(mode="json"))

    return asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi registration",
        description="Validates partners' enrollment requests, keeps participants, publishes one outcome each.",
        routes=[("/partners", HttpHandler(partners, methods=("GET", "POST"), include_in_schema=False))],
        lifespan=lifespan,
    )
