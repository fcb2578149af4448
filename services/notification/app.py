"""Notification wiring: the only place clients are created.

python -m services.notification                run the service (HTTP on NOTIFICATION_HTTP_PORT, 8003)
faststream run services.notification.app:app     not offered: building the app needs the environment's secrets

Start-up order: topics and indexes, the seed file, then the broker starts consuming; after that the
background work starts (the ledger sweeper, the digest scheduler, the stagnation check). Shutdown runs the
other way: background work stops and hands its leases back, then the consumers stop, then MongoDB closes.
"""

from __future__ import annotations

import dataclasses
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.notification.admin import load_seed
from services.notification.budget_alerts import BudgetAlerts, BudgetRules
from services.notification.channels import SmtpPool, channels_for, http_limits, reachable, smtp_relay
from services.notification.dispatch import Dispatcher, RetryPolicy, lanes_for
from services.notification.handlers import SERVICE, Inbox
from services.notification.http import AdminApi
from services.notification.service import CoverageRules, Metrics, Notifier, Schedule
from services.notification.settings import NotificationSettings
from services.notification.store import MongoNotificationStore
from services.notification.templates import Renderer
from shared import topics
from shared.consumer import Batches, batch_subscriber
from shared.crypto import Sealer
from shared.events import DeadLetterRecorded, DeliveryEvent
from shared.logging import get_logger
from shared.messaging import DeadLetters, Keyed, ensure_topics, publish_all
from shared.regions import load_regions
from shared.runtime import Probe, asgi_app, new_broker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from faststream.asgi import AsgiFastStream
    from faststream.kafka import KafkaBroker
    from prometheus_client import Counter

    from shared.events import CloudEvent

log = get_logger(__name__)


@dataclass(frozen=True)
class Running:
    """What the lifespan creates, for the subscribers, the HTTP routes and the background work."""

    mongo: AsyncMongoClient[dict[str, Any]]
    store: MongoNotificationStore
    notifier: Notifier
    budget_alerts: BudgetAlerts
    inbox: Inbox
    schedule: Schedule


def service_topics(settings: NotificationSettings) -> list[topics.Topic]:
    """The catalogue's topics under the names the settings give (tests point a service at unique topics)."""
    return [
        dataclasses.replace(topics.ENROLLMENT_OUTCOMES, name=settings.outcomes_topic),
        dataclasses.replace(topics.REGION_AGGREGATES, name=settings.aggregates_topic),
        dataclasses.replace(topics.BUDGET_POSITIONS, name=settings.budget_topic),
        dataclasses.replace(topics.NOTIFICATION_DELIVERIES, name=settings.deliveries_topic),
        dataclasses.replace(topics.DEAD_LETTERS, name=settings.dead_letters_topic),
    ]


@asynccontextmanager
async def start(
    settings: NotificationSettings, broker: KafkaBroker, sealer: Sealer, metrics: Metrics
) -> AsyncIterator[Running]:
    """Topics, the database and its indexes, the seed file; then the notifier and the dispatcher it feeds."""
    if settings.create_topics:
        await ensure_topics(
            settings.kafka_bootstrap_servers, service_topics(settings), **settings.kafka_client_options()
        )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    http = httpx.AsyncClient(timeout=settings.send_timeout, follow_redirects=False, limits=http_limits(settings))
    # One pool for the one relay configured; as many connections as e-mails may be sent at once.
    smtp = SmtpPool(smtp_relay(settings), size=settings.email_concurrency)
    try:
        store = MongoNotificationStore(mongo, settings.mongodb_database, sealer, secret_ttl=settings.signing_secret_ttl)
        await store.create_indexes()
        if settings.seed_file is not None:
            partners, subscriptions = await load_seed(store, settings.seed_file)
            log.info("seed loaded", partners=partners, subscriptions=subscriptions)

        async def report(event: CloudEvent[Any], key: str) -> None:
            await publish_all(broker, [Keyed.of(settings.deliveries_topic, key, event)])

        lanes = lanes_for(settings, channels_for(settings, http, smtp))
        dispatcher = Dispatcher(
            store,
            lanes,
            RetryPolicy.of(settings),
            report,
            source=f"lindungi/{SERVICE}",
            sweep_interval=settings.sweep_interval,
            observe=metrics.settled,
        )
        rules = CoverageRules.of(settings)
        regions = load_regions()
        notifier = Notifier(store, Renderer(), dispatcher, regions, rules, channels=reachable(settings))
        budget_alerts = BudgetAlerts(store, notifier, regions, BudgetRules.of(settings))
        dead_letters = DeadLetters(SERVICE, settings.dead_letters_topic, sealer)
        inbox = Inbox(notifier, budget_alerts, broker, dead_letters, settings.max_message_bytes)
        schedule = Schedule(
            notifier,
            dispatcher,
            digest_every=settings.digest_check_interval,
            stagnation_every=settings.stagnation_check_interval,
            checked=metrics.stagnation_checks.inc,
            budget_alerts=budget_alerts,
        )
        yield Running(mongo, store, notifier, budget_alerts, inbox, schedule)
    finally:
        await smtp.close()
        await http.aclose()
        await mongo.close()


def subscribe(
    broker: KafkaBroker, settings: NotificationSettings, inbox: Callable[[], Inbox], failures: Counter
) -> None:
    """The three subscribers, and what notification publishes (declared for the AsyncAPI document)."""
    batch_subscriber(
        broker,
        Batches.of(settings, settings.outcomes_topic, auto_offset_reset=settings.auto_offset_reset),
        lambda records: inbox().outcomes(records),
        failures=failures,
        title="enrollment outcomes",
        description="Registered / updated / terminated / reactivated: the worker and subscribers hear; "
        "rejected: the partner hears by signed webhook.",
    )
    # A group of its own: a rebalance of one stream does not pause the other.
    group_id = f"{settings.group_id}-aggregates"
    batch_subscriber(
        broker,
        Batches.of(
            settings, settings.aggregates_topic, group_id=group_id, auto_offset_reset=settings.auto_offset_reset
        ),
        lambda records: inbox().aggregates(records),
        failures=failures,
        title="region aggregates",
        description="Coverage per region: milestones crossed are announced once; stalls are escalated.",
    )
    batch_subscriber(
        broker,
        Batches.of(
            settings,
            settings.budget_topic,
            group_id=f"{settings.group_id}-budget",
            auto_offset_reset=settings.auto_offset_reset,
        ),
        lambda records: inbox().budget(records),
        failures=failures,
        title="budget positions",
        description="Each APBD/APBDes budget's position: 80% and 100% of the allocation reserved are announced "
        "to the region's budget subscribers once per allocation version.",
    )
    # Keyed records, published directly rather than through these publishers.
    broker.publisher(settings.deliveries_topic, title="notification deliveries", schema=DeliveryEvent)
    broker.publisher(settings.dead_letters_topic, title="dead letters", schema=DeadLetterRecorded)


def create_app(settings: NotificationSettings | None = None) -> AsgiFastStream:
    settings = settings or NotificationSettings()  # secrets come from the environment
    registry = CollectorRegistry()
    broker = new_broker(settings.kafka_bootstrap_servers, SERVICE, registry, security=settings.kafka_security())
    metrics = Metrics.register(registry)
    sealer = settings.sealer()  # the current seal key, and during a rotation the previous ones
    running: Running | None = None

    def started() -> Running:
        if running is None:
            raise RuntimeError("the notification service has not started")
        return running

    subscribe(broker, settings, lambda: started().inbox, metrics.batch_failures)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        nonlocal running
        async with start(settings, broker, sealer, metrics) as running:
            yield

    probe = Probe(broker, lambda: running.mongo if running else None)
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    app = asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi notification",
        description="Tells workers, partners and subscribed stakeholders what happened, once, by e-mail, "
        "webhook or SMS; reports every delivery on the deliveries topic.",
        routes=AdminApi(
            lambda: started().store, lambda: started().notifier, token, budget_alerts=lambda: started().budget_alerts
        ).routes(),
        lifespan=lifespan,
    )

    @app.after_startup
    async def start_background() -> None:
        started().schedule.start()
        probe.ready = True

    @app.on_shutdown
    async def stop_background() -> None:
        probe.ready = False
        if running is not None:
            await running.schedule.stop()

    return app
