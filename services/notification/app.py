"""Notification wiring: the only place clients are created.

python -m services.notification                run the service (HTTP on NOTIFICATION_HTTP_PORT, 8003)
faststream run services.notification.app:app     not offered: building the app needs the environment's secrets

Start-up order: topics and indexes, the seed file, then the broker starts consuming; after that the
background work starts (the ledger sweeper, the digest scheduler, the stagnation check). Shutdown runs the
other way: background work stops and hands its leases back, then the consumers stop, then MongoDB closes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage
from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient

from services.notification.admin import load_seed
from services.notification.api import AdminApi
from services.notification.channels import (
    Channel,
    EmailChannel,
    SmsGatewayChannel,
    SmtpConfig,
    UnconfiguredChannel,
    WebhookChannel,
)
from services.notification.dispatch import Dispatcher, Lane, Publish, RetryPolicy, Settled
from services.notification.handlers import SERVICE, Inbox
from services.notification.service import CoverageRules, Notifier
from services.notification.settings import NotificationSettings
from services.notification.store import MongoNotificationStore
from services.notification.templates import Renderer
from shared.crypto import Sealer
from shared.events import CloudEvent, DeadLetterRecorded, DeliveryChannel, DeliveryEvent
from shared.logging import get_logger
from shared.messaging import encode, ensure_topics
from shared.regions import Regions, load_regions
from shared.runtime import Probe, asgi_app, new_broker
from shared.topics import DEAD_LETTERS, ENROLLMENT_OUTCOMES, NOTIFICATION_DELIVERIES, REGION_AGGREGATES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from datetime import date

log = get_logger(__name__)


def _channels(settings: NotificationSettings, http: httpx.AsyncClient) -> dict[DeliveryChannel, Channel]:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    email = EmailChannel(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            sender=settings.mail_from,
            timeout=settings.send_timeout,
        )
    )
    sms: Channel = UnconfiguredChannel("no SMS gateway configured (NOTIFICATION_SMS_GATEWAY_URL)")
    if settings.sms_gateway_url and settings.sms_gateway_secret:
        sms = SmsGatewayChannel(
            http,
            settings.sms_gateway_url,
            settings.sms_gateway_secret.get_secret_value(),
            settings.sms_sender,
        )
    return {
        DeliveryChannel.EMAIL: email,
        DeliveryChannel.WEBHOOK: WebhookChannel(http),
        DeliveryChannel.SMS: sms,
    }


def _concurrency(settings: NotificationSettings, channel: DeliveryChannel) -> int:
    return {
        DeliveryChannel.EMAIL: settings.email_concurrency,
        DeliveryChannel.WEBHOOK: settings.webhook_concurrency,
        DeliveryChannel.SMS: settings.sms_concurrency,
    }[channel]


def _dispatcher(
    settings: NotificationSettings,
    store: MongoNotificationStore,
    channels: dict[DeliveryChannel, Channel],
    publish: Publish,
    observe: Callable[[Settled], None],
) -> Dispatcher:
    return Dispatcher(
        store,
        {
            channel: Lane(
                implementation,
                _concurrency(settings, channel),
                settings.channel_capacity,
                per_address=settings.webhook_endpoint_concurrency if channel is DeliveryChannel.WEBHOOK else None,
            )
            for channel, implementation in channels.items()
        },
        RetryPolicy(
            max_attempts=settings.max_attempts,
            initial=settings.retry_initial,
            maximum=settings.retry_max,
            jitter=settings.retry_jitter,
            timeout=settings.send_timeout,
            lease=settings.lease,
        ),
        publish,
        source=f"lindungi/{SERVICE}",
        sweep_interval=settings.sweep_interval,
        observe=observe,
    )


def _notifier(
    settings: NotificationSettings, store: MongoNotificationStore, dispatcher: Dispatcher, regions: Regions
) -> Notifier:
    available = {DeliveryChannel.EMAIL, DeliveryChannel.WEBHOOK}
    if settings.sms_gateway_url:
        available.add(DeliveryChannel.SMS)
    rules = CoverageRules(
        thresholds=tuple(settings.milestone_thresholds),
        stagnation_period=settings.stagnation_period,
        stagnation_levels=tuple(settings.stagnation_levels),
        digest_hour=settings.digest_hour,
    )
    return Notifier(store, Renderer(), dispatcher, regions, rules, channels=frozenset(available))


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    """Run a periodic job forever; one failed round is logged and the next one tries again."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("periodic job failed", job=name)
        await asyncio.sleep(seconds)


def create_app(settings: NotificationSettings | None = None) -> AsgiFastStream:  # noqa: C901, PLR0915 - wiring
    settings = settings or NotificationSettings()  # secrets come from the environment
    registry = CollectorRegistry()
    broker = new_broker(settings.kafka_bootstrap_servers, SERVICE, registry, security=settings.kafka_security())
    deliveries = Counter(
        "notification_deliveries", "settled deliveries", ["channel", "status", "kind"], registry=registry
    )
    batch_failures = Counter("notification_batch_failures", "batches rewound after a failure", registry=registry)
    stagnation_checks = Counter("notification_stagnation_checks", "stagnation checks completed", registry=registry)
    regions = load_regions()
    sealer = Sealer(settings.seal_key.get_secret_value())
    state: dict[str, Any] = {}
    background: list[asyncio.Task[None]] = []
    probe = Probe(broker, lambda: state.get("mongo"))

    async def publish_to(topic: str, event: CloudEvent[Any], key: str) -> None:
        value, headers = encode(event)
        await broker.publish(value, topic, key=key.encode(), headers=headers)

    async def consume(message: KafkaMessage, handle: Callable[[Any], Awaitable[None]]) -> None:
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        try:
            await handle(records)
        except Exception:
            batch_failures.inc()
            log.exception("batch failed; rewinding", batch_size=len(records))
            await message.nack()
            await asyncio.sleep(1)
            return
        await message.ack()

    @broker.subscriber(
        settings.outcomes_topic,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        auto_offset_reset=settings.auto_offset_reset,
        ack_policy=AckPolicy.MANUAL,
        title="enrollment outcomes",
        description="Registered / updated / terminated / reactivated: the worker and subscribers hear; "
        "rejected: the partner hears by signed webhook.",
    )
    async def on_outcomes(message: KafkaMessage) -> None:
        await consume(message, state["inbox"].outcomes)

    @broker.subscriber(
        settings.aggregates_topic,
        # A group of its own: a rebalance of one stream does not pause the other.
        group_id=f"{settings.group_id}-aggregates",
        batch=True,
        max_records=settings.batch_max_records,
        auto_offset_reset=settings.auto_offset_reset,
        ack_policy=AckPolicy.MANUAL,
        title="region aggregates",
        description="Coverage per region: milestones crossed are announced once; stalls are escalated.",
    )
    async def on_aggregates(message: KafkaMessage) -> None:
        await consume(message, state["inbox"].aggregates)

    # Declared for the AsyncAPI document: what notification publishes (keyed records, published directly).
    broker.publisher(settings.deliveries_topic, title="notification deliveries", schema=DeliveryEvent)
    broker.publisher(settings.dead_letter_topic, title="dead letters", schema=DeadLetterRecorded)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        if settings.create_topics:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                [
                    dataclasses.replace(ENROLLMENT_OUTCOMES, name=settings.outcomes_topic),
                    dataclasses.replace(REGION_AGGREGATES, name=settings.aggregates_topic),
                    dataclasses.replace(NOTIFICATION_DELIVERIES, name=settings.deliveries_topic),
                    dataclasses.replace(DEAD_LETTERS, name=settings.dead_letter_topic),
                ],
                **settings.kafka_client_options(),
            )
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
        state["mongo"] = client
        http = httpx.AsyncClient(timeout=settings.send_timeout, follow_redirects=False)
        try:
            store = MongoNotificationStore(client, settings.mongodb_database, sealer)
            await store.create_indexes()
            if settings.seed_file is not None:
                partners, subscriptions = await load_seed(store, settings.seed_file)
                log.info("seed loaded", partners=partners, subscriptions=subscriptions)
            dispatcher = _dispatcher(
                settings,
                store,
                _channels(settings, http),
                lambda event, key: publish_to(settings.deliveries_topic, event, key),
                lambda settled: deliveries.labels(settled.channel.value, settled.status, settled.kind).inc(),
            )
            notifier = _notifier(settings, store, dispatcher, regions)
            state.update(
                store=store,
                dispatcher=dispatcher,
                notifier=notifier,
                inbox=Inbox(
                    notifier,
                    lambda event, key: publish_to(settings.dead_letter_topic, event, key),
                    sealer,
                    settings.max_message_bytes,
                ),
            )
            yield
        finally:
            await http.aclose()
            await client.close()

    async def start_background() -> None:
        dispatcher: Dispatcher = state["dispatcher"]
        notifier: Notifier = state["notifier"]
        dispatcher.start()  # its first sweep resumes whatever a previous run left pending
        digest_day: list[date | None] = [None]

        async def digest_tick() -> None:
            digest_day[0] = await notifier.digest_if_due(digest_day[0])

        async def stagnation_tick() -> None:
            await notifier.check_stagnation()
            stagnation_checks.inc()

        background.extend(
            [
                asyncio.create_task(_every(settings.digest_check_interval, digest_tick, "digest")),
                asyncio.create_task(_every(settings.stagnation_check_interval, stagnation_tick, "stagnation")),
            ]
        )
        probe.ready = True

    async def stop_background() -> None:
        probe.ready = False
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        background.clear()
        if "dispatcher" in state:
            await state["dispatcher"].stop()

    app = asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi notification",
        description="Tells workers, partners and subscribed stakeholders what happened, once, by e-mail, "
        "webhook or SMS; reports every delivery on the deliveries topic.",
        routes=AdminApi(state, settings.admin_token.get_secret_value() if settings.admin_token else None).routes(),
        lifespan=lifespan,
    )
    app.after_startup(start_background)
    app.on_shutdown(stop_background)
    return app
