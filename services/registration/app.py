"""Registration wiring: the only place clients are created.

python -m services.registration                              run the service (HTTP on REGISTRATION_HTTP_PORT)
faststream run --factory services.registration.app:create_app   the same through FastStream's CLI
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient

from services.registration.budgeting import Budgeting
from services.registration.budgets import MongoBudgets
from services.registration.channels import PartnerChannels
from services.registration.domain.participation import Partner
from services.registration.handlers import Intake
from services.registration.http import BudgetsApi, PartnersApi
from services.registration.service import Registration
from services.registration.settings import RegistrationSettings
from services.registration.store import Document, MongoRegistrationStore
from shared.consumer import Batches, batch_subscriber
from shared.crypto import Sealer
from shared.events import BudgetEvent, DeadLetterRecorded, Outcome
from shared.messaging import DeadLetters, ensure_topics, publish_all
from shared.regions import load_regions
from shared.runtime import Probe, asgi_app, new_broker
from shared.topics import partner_requests_pattern, partner_topic

if TYPE_CHECKING:
    from collections.abc import Callable

    from faststream.asgi import AsgiFastStream
    from faststream.kafka import KafkaBroker

    from shared.consumer import Records
    from shared.regions import Regions


@dataclass(frozen=True)
class Running:
    """What the lifespan creates, for the subscriber and the HTTP routes."""

    mongo: AsyncMongoClient[Document]
    store: MongoRegistrationStore
    intake: Intake
    channels: PartnerChannels
    partners: ProvisionedPartners
    budgets: MongoBudgets


@dataclass(frozen=True)
class ProvisionedPartners:
    """The partner directory, creating each partner's own two topics when it is saved (unless topics are
    provisioned by the deployment, `create_topics=false`)."""

    store: MongoRegistrationStore
    settings: RegistrationSettings

    async def load_partners(self) -> dict[str, Partner]:
        return await self.store.load_partners()

    async def upsert_partner(self, partner: Partner) -> None:
        await self.store.upsert_partner(partner)
        await self.create_topics([partner.partner_id])

    async def create_topics(self, partner_ids: list[str]) -> None:
        if not self.settings.create_topics or not partner_ids:
            return
        prefix = self.settings.partner_topic_prefix
        wanted = [partner_topic(p, requests=r, prefix=prefix) for p in partner_ids for r in (True, False)]
        await ensure_topics(self.settings.kafka_bootstrap_servers, wanted, **self.settings.kafka_client_options())


@asynccontextmanager
async def start(
    settings: RegistrationSettings, broker: KafkaBroker, regions: Regions, sealer: Sealer
) -> AsyncIterator[Running]:
    """Indexes, topics and the seeded partners (each safe to repeat, by several instances at once); then the
    intake that decodes batches for the application layer."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        store = MongoRegistrationStore(mongo, settings.mongodb_database, sealer)
        budgets = MongoBudgets(mongo, settings.mongodb_database, sealer)
        await store.create_indexes()
        await budgets.create_indexes()
        if settings.create_topics:
            await ensure_topics(settings.kafka_bootstrap_servers, **settings.kafka_client_options())
        if settings.partners_seed_file is not None:
            for item in json.loads(settings.partners_seed_file.read_text()):
                await store.upsert_partner(Partner.model_validate(item))
        partners = ProvisionedPartners(store, settings)
        await partners.create_topics(sorted(await store.load_partners()))
        registration = Registration(
            request_log=store,
            participations=store,
            partners=store,
            publish=functools.partial(publish_all, broker),
            regions=regions,
            nik_secret=settings.nik_hash_secret.get_secret_value().encode(),
            outcomes_topic=settings.outcomes_topic,
            partner_outcome_topics=settings.partner_outcome_topics,
            partner_topic_prefix=settings.partner_topic_prefix,
            budgeting=Budgeting(
                budgets, functools.partial(publish_all, broker), settings.budget_topic, settings.requests_topic
            ),
        )
        dead_letters = DeadLetters("registration", settings.dead_letters_topic, sealer)
        intake = Intake(registration, dead_letters, settings.max_message_bytes)
        channels = PartnerChannels(
            settings.requests_topic,
            partner_requests_pattern(settings.partner_topic_prefix),
            functools.partial(publish_all, broker),
        )
        yield Running(mongo, store, intake, channels, partners, budgets)
    finally:
        await mongo.close()


def subscribe(
    broker: KafkaBroker, settings: RegistrationSettings, running: Callable[[], Running], failures: Counter
) -> None:
    """The intake and partner-channel subscribers, and what registration publishes (declared for the AsyncAPI
    document)."""

    # Asked for at each batch: the lifespan creates what the handlers need after the subscribers exist.
    async def intake(records: Records) -> None:
        await running().intake.handle(records)

    async def forward(records: Records) -> None:
        await running().channels.handle(records)

    batch_subscriber(
        broker,
        Batches.of(settings, settings.requests_topic),
        intake,
        failures=failures,
        title="enrollment requests",
        description="Partners' enroll / update / terminate / reactivate requests, and finance offices' "
        "allocations and verdicts on held requests; one outcome each.",
    )
    channels = partner_requests_pattern(settings.partner_topic_prefix)
    batch_subscriber(
        broker,
        Batches.of(settings, channels.pattern, group_id=f"{settings.group_id}-channels", pattern=channels.pattern),
        forward,
        failures=failures,
        title="partners' own request topics",
        description="Each partner's requests, forwarded to the intake topic with the partner its topic proves.",
    )
    # Keyed records, published directly rather than through these publishers.
    broker.publisher(settings.outcomes_topic, title="enrollment outcomes", schema=Outcome)
    broker.publisher(settings.budget_topic, title="budget positions and allocations", schema=BudgetEvent)
    broker.publisher(settings.dead_letters_topic, title="dead letters", schema=DeadLetterRecorded)


def create_app(settings: RegistrationSettings | None = None) -> AsgiFastStream:
    settings = settings or RegistrationSettings()  # secrets come from the environment
    registry = CollectorRegistry()
    broker = new_broker(
        settings.kafka_bootstrap_servers,
        "registration",
        registry,
        security=settings.kafka_security(),
        enable_idempotence=True,  # no reordering or duplicates from producer retries
        linger_ms=5,
        metadata_max_age_ms=settings.partner_topics_refresh_ms,
    )
    regions = load_regions()
    sealer = settings.sealer()  # the current seal key, and during a rotation the previous ones
    running: Running | None = None

    def started() -> Running:
        if running is None:
            raise RuntimeError("registration has not started; the batch is read again")
        return running

    failures = Counter("registration_batch_failures", "batches that failed and were rewound", registry=registry)
    subscribe(broker, settings, started, failures)
    probe = Probe(broker, lambda: running.mongo if running else None)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        nonlocal running
        async with start(settings, broker, regions, sealer) as running:
            probe.ready = True
            try:
                yield
            finally:
                probe.ready = False

    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    return asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi registration",
        description="Validates partners' enrollment requests, keeps participants, publishes one outcome each.",
        routes=[
            *PartnersApi(lambda: running.partners if running else None, regions, admin_token).routes(),
            *BudgetsApi(lambda: running.budgets if running else None, admin_token).routes(),
        ],
        lifespan=lifespan,
    )
