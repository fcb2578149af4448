"""Reporting wiring: the only place clients are created.

python -m services.reporting               run the service (HTTP on REPORTING_HTTP_PORT)
python -m services.reporting rebuild       recompute every aggregate from the start of the outcome topic
python -m services.reporting load-targets  load official workforce figures and coverage targets
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.reporting.budgets import BudgetHandler, BudgetLedger, BudgetReaders
from services.reporting.dashboard import Dashboard
from services.reporting.domain.budgets import CoverageCost
from services.reporting.domain.coverage import CoveragePolicy, parse_targets
from services.reporting.domain.figures import Budgets, Figures
from services.reporting.handlers import KafkaPositions, OutcomeHandler, PartitionAssignments
from services.reporting.http import RegionsApi
from services.reporting.projection import Projection
from services.reporting.publishing import CoverageTargets, SnapshotPublisher, snapshot_sender, utc_now
from services.reporting.service import Metrics, Reporting
from services.reporting.settings import ReportingSettings
from services.reporting.store import MongoReportingStore
from shared import topics
from shared.consumer import Batches, batch_subscriber
from shared.events import DeadLetterRecorded, RegionAggregateUpdated
from shared.messaging import DeadLetters, ensure_topics
from shared.regions import load_regions
from shared.runtime import Probe, asgi_app, new_broker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from faststream.asgi import AsgiFastStream
    from faststream.kafka import KafkaBroker


def service_topics(settings: ReportingSettings) -> tuple[topics.Topic, ...]:
    """The catalogue's topics under the names the settings give (tests point a service at unique topics)."""
    return (
        dataclasses.replace(topics.ENROLLMENT_OUTCOMES, name=settings.outcomes_topic),
        dataclasses.replace(topics.REGION_AGGREGATES, name=settings.region_aggregates_topic),
        dataclasses.replace(topics.DEAD_LETTERS, name=settings.dead_letters_topic),
        dataclasses.replace(topics.BUDGET_POSITIONS, name=settings.budget_topic),
    )


@dataclass
class Running:
    """What the lifespan creates, for the handler, the listener, the routes and the background tasks."""

    mongo: AsyncMongoClient[dict[str, Any]]
    reporting: Reporting
    coverage: CoverageTargets
    publisher: SnapshotPublisher
    budgets: BudgetLedger
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def figures(self, suppress_below: int) -> Figures:
        model, budgets = self.reporting.projection.model, Budgets(self.budgets.book, self.budgets.cost)
        return Figures(model, self.coverage.policy, utc_now(), suppress_below, budgets)


async def start(  # noqa: PLR0913 - what the lifespan hands over, the budget readers keyword-only
    settings: ReportingSettings,
    snapshots: AIOKafkaProducer,
    mongo: AsyncMongoClient[dict[str, Any]],
    positions: KafkaPositions,
    metrics: Metrics,
    *,
    readers: BudgetReaders,
) -> Running:
    """The store ready, the topics there, the official figures loaded; then what folds and publishes outcomes."""
    store = MongoReportingStore(mongo, settings.mongodb_database)
    await store.create_indexes()
    if settings.create_topics:
        await ensure_topics(
            settings.kafka_bootstrap_servers, service_topics(settings), **settings.kafka_client_options()
        )
    regions = load_regions()
    if settings.targets_file is not None:
        targets = parse_targets(settings.targets_file.read_text(encoding="utf-8"), regions)
        await store.save_targets(targets, source=str(settings.targets_file), replace=False)
    policy = CoveragePolicy(
        regions, settings.working_age_share, settings.labour_force_participation, settings.default_target_ratio
    )
    coverage = CoverageTargets(policy, store)
    await coverage.refresh()
    projection = Projection(
        store,
        settings.outcomes_topic,
        settings.dedupe_window,
        settings.commit_interval_seconds,
        compaction_seconds=settings.compaction_seconds,
        overlay_limit=settings.overlay_limit,
    )
    cost = CoverageCost(settings.vulnerable_share, settings.vulnerable_package_monthly)
    budgets = BudgetLedger(store, cost, metrics, readers=readers)
    await budgets.refresh()  # every budget stored so far, before the first figures are served
    reporting = Reporting(projection, positions, metrics)
    send = snapshot_sender(snapshots, settings.region_aggregates_topic)
    publisher = SnapshotPublisher(
        projection,
        coverage,
        send,
        suppress_below=settings.suppress_below,
        budgets=budgets,
        rerank_every=settings.rerank_interval_seconds,
        catching_up=lambda: reporting.catching_up,
        catch_up_kecamatan_every=settings.catch_up_kecamatan_interval_seconds,
    )
    return Running(mongo, reporting, coverage, publisher, budgets)


def subscribe(
    broker: KafkaBroker,
    settings: ReportingSettings,
    metrics: Metrics,
    reporting: Callable[[], Reporting | None],
    budgets: Callable[[], BudgetLedger | None],
) -> tuple[KafkaPositions, BudgetReaders]:
    """The outcome and budget subscribers (and what reporting publishes, for the AsyncAPI document); returns
    the outcome subscriber's positions and who reads the budget topic.

    `commit=False`: offsets are committed after each write of the state, and a failed batch is read again from
    the stored cursors, not from Kafka's committed offsets (service.py).
    """
    topic = settings.outcomes_topic
    sealer = settings.sealer()  # the current seal key, and during a rotation the previous ones
    dead_letters = DeadLetters("reporting", settings.dead_letters_topic, sealer)
    intake = OutcomeHandler(
        topic, settings.max_message_bytes, reporting, broker, dead_letters, settings.batch_max_records
    )

    def projection() -> Projection | None:
        service = reporting()
        return service.projection if service is not None else None

    subscriber = batch_subscriber(
        broker,
        Batches.of(settings, topic),
        intake.handle,
        failures=metrics.failures,
        title="enrollment outcomes",
        description="Registered, updated, terminated, reactivated, rejected: folded into region aggregates.",
        commit=False,
        rewind=intake.rewind,
        listener=PartitionAssignments(projection, topic, lambda: subscriber.consumer),
    )
    # A group of its own: a rebalance of one stream does not pause the other. Committed after each batch: a
    # position is kept only if newer than the kept one, so a batch read twice changes nothing (budgets.py).
    readers = BudgetReaders(settings.budget_topic, lambda: budget_subscriber.consumer)
    budget_subscriber = batch_subscriber(
        broker,
        Batches.of(settings, settings.budget_topic, group_id=f"{settings.group_id}-budgets"),
        BudgetHandler(settings.max_message_bytes, budgets, broker, dead_letters).handle,
        listener=readers,
        failures=metrics.failures,
        title="budget positions",
        description="Each APBD/APBDes budget's allocation, reservation and holds: kept per budget, shown with "
        "the region's figures (spent to date, remaining, runway, the cost of full coverage).",
    )
    broker.publisher(settings.region_aggregates_topic, title="region aggregates", schema=RegionAggregateUpdated)
    broker.publisher(settings.dead_letters_topic, title="dead letters", schema=DeadLetterRecorded)
    return KafkaPositions(topic, lambda: subscriber.consumer), readers


def create_app(settings: ReportingSettings | None = None) -> AsgiFastStream:
    settings = settings or ReportingSettings()
    registry = CollectorRegistry()
    broker = new_broker(
        settings.kafka_bootstrap_servers,
        "reporting",
        registry,
        security=settings.kafka_security(),
        enable_idempotence=True,
        linger_ms=5,
    )
    metrics = Metrics.register(registry)
    running: Running | None = None
    positions, readers = subscribe(
        broker,
        settings,
        metrics,
        lambda: running.reporting if running else None,
        lambda: running.budgets if running else None,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        nonlocal running
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
        snapshots = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="lindungi-reporting-snapshots",
            enable_idempotence=True,
            linger_ms=5,
            **settings.kafka_client_options(),
        )
        try:
            await snapshots.start()
            running = await start(settings, snapshots, mongo, positions, metrics, readers=readers)
            yield
        finally:
            await snapshots.stop()
            await mongo.close()

    api = RegionsApi(lambda: running.figures(settings.suppress_below) if running else None)
    dashboard = Dashboard(api.figures)  # the API's figures, suppression included: the page shows what it serves
    probe = Probe(broker, lambda: running.mongo if running else None)
    app = asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi reporting",
        description="Per-region aggregates of enrollment outcomes: coverage, flows, contributions, rankings.",
        routes=[*api.routes(), *dashboard.routes()],
        lifespan=lifespan,
    )
    # AsgiFastStream matches exact paths only; /regions/{code} and /dashboard/{code} need a prefix match.
    app.not_found = dashboard.with_fallback(api.with_fallback(app.not_found))  # type: ignore[method-assign,assignment]

    @app.after_startup
    async def start_background() -> None:
        if running is not None:
            publishing = running.publisher.run(settings.publish_interval_seconds, settings.targets_refresh_seconds)
            # Each write wakes the publisher: the figures go out as soon as they are durable (publishing.py).
            writing = running.reporting.keep_writing(settings.commit_interval_seconds, running.publisher.wake)
            running.tasks += [asyncio.create_task(writing), asyncio.create_task(publishing)]
        probe.ready = True

    @app.on_shutdown
    async def stop_background() -> None:
        probe.ready = False
        if running is not None:
            for task in running.tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await running.reporting.close()

    return app
