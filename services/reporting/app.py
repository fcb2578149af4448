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

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient

from services.reporting.figures import CoveragePolicy, Figures, parse_targets
from services.reporting.handlers import OutcomeIntake, PartitionAssignments, commit_offsets
from services.reporting.http import RegionsApi
from services.reporting.projection import Projection
from services.reporting.publishing import CoverageTargets, SnapshotPublisher, snapshot_sender, utc_now
from services.reporting.settings import ReportingSettings
from services.reporting.store import MongoReportingStore
from shared import topics
from shared.crypto import Sealer
from shared.events import DeadLetterRecorded, RegionAggregateUpdated
from shared.messaging import ensure_topics, tolerant_parser
from shared.regions import load_regions
from shared.runtime import Probe, asgi_app, new_broker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from faststream.asgi import AsgiFastStream
    from faststream.message import StreamMessage

    from shared.regions import Regions

log = structlog.get_logger("reporting")


def service_topics(settings: ReportingSettings) -> tuple[topics.Topic, ...]:
    """The catalogue's topics under the names the settings give (tests point a service at unique topics)."""
    return (
        dataclasses.replace(topics.ENROLLMENT_OUTCOMES, name=settings.outcomes_topic),
        dataclasses.replace(topics.REGION_AGGREGATES, name=settings.region_aggregates_topic),
        dataclasses.replace(topics.DEAD_LETTERS, name=settings.dead_letters_topic),
    )


def coverage_policy(settings: ReportingSettings, regions: Regions) -> CoveragePolicy:
    return CoveragePolicy(
        regions=regions,
        working_age_share=settings.working_age_share,
        labour_force_participation=settings.labour_force_participation,
        default_target_ratio=settings.default_target_ratio,
    )


async def raw_values(message: StreamMessage[Any]) -> list[bytes]:
    # The handler decodes each record itself (and dead-letters what is not an outcome); FastStream's decoder
    # would parse a body labelled `application/json` and fail the batch on the first broken one.
    return [r.value or b"" for r in message.raw_message]


@dataclass
class _Runtime:
    """What the lifespan creates, for the handler, the listener and the HTTP routes."""

    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    projection: Projection | None = None
    intake: OutcomeIntake | None = None
    coverage: CoverageTargets | None = None
    publisher: SnapshotPublisher | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def create_app(settings: ReportingSettings | None = None) -> AsgiFastStream:  # noqa: C901, PLR0915 - wiring
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
    applied = Counter("reporting_outcomes_applied", "outcome events counted", registry=registry)
    duplicates = Counter(
        "reporting_outcomes_duplicate", "outcome events seen before (same event id)", registry=registry
    )
    failures = Counter("reporting_batch_failures", "batches that failed and were read again", registry=registry)
    regions = load_regions()
    sealer = Sealer(settings.seal_key.get_secret_value())
    runtime = _Runtime()
    probe = Probe(broker, lambda: runtime.mongo)

    assignments = PartitionAssignments(lambda: runtime.projection, settings.outcomes_topic, lambda: subscriber.consumer)
    subscriber = broker.subscriber(
        settings.outcomes_topic,
        group_id=settings.group_id,
        batch=True,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        listener=assignments,
        parser=tolerant_parser,
        decoder=raw_values,
        title="enrollment outcomes",
        description="Registered, updated, terminated, reactivated, rejected: folded into region aggregates.",
    )

    @subscriber
    async def on_outcomes(message: KafkaMessage) -> None:
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        consumer, intake = subscriber.consumer, runtime.intake
        if consumer is None or intake is None:
            raise RuntimeError("reporting is not started")
        try:
            progress = await intake.handle(records, consumer)
        except Exception:
            # Store or broker trouble: read again from where the state has got to, so nothing is skipped.
            failures.inc()
            log.exception("batch failed; reading it again", batch_size=len(records))
            intake.rewind(records, consumer)
            await asyncio.sleep(1)
            return
        applied.inc(progress.applied)
        duplicates.inc(progress.duplicates)
        # No message.ack(): offsets are committed to Kafka after each write of the state (handlers.py).

    async def write_state() -> None:
        if runtime.projection is not None:
            written = await runtime.projection.commit()
            await commit_offsets(subscriber.consumer, settings.outcomes_topic, written)

    async def keep_writing() -> None:
        """Every commit interval, write what was folded since the last write, while folding goes on."""
        while True:
            await asyncio.sleep(settings.commit_interval_seconds)
            try:
                await write_state()
            except Exception:
                failures.inc()
                log.exception("writing the state failed; it stays pending and is written again")

    # Declared for the AsyncAPI document: what reporting publishes.
    broker.publisher(settings.region_aggregates_topic, title="region aggregates", schema=RegionAggregateUpdated)
    broker.publisher(settings.dead_letters_topic, title="dead letters", schema=DeadLetterRecorded)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
        runtime.mongo = client
        store = MongoReportingStore(client, settings.mongodb_database)
        await store.create_indexes()
        if settings.create_topics:
            await ensure_topics(
                settings.kafka_bootstrap_servers, service_topics(settings), **settings.kafka_client_options()
            )
        if settings.targets_file is not None:
            targets = parse_targets(settings.targets_file.read_text(encoding="utf-8"), regions)
            await store.save_targets(targets, source=str(settings.targets_file), replace=False)
        runtime.coverage = CoverageTargets(coverage_policy(settings, regions), store)
        await runtime.coverage.refresh()
        runtime.projection = Projection(
            store, settings.outcomes_topic, settings.dedupe_window, settings.commit_interval_seconds
        )
        runtime.intake = OutcomeIntake(settings, runtime.projection, broker, sealer)
        runtime.publisher = SnapshotPublisher(
            runtime.projection,
            runtime.coverage,
            snapshot_sender(broker, settings.region_aggregates_topic),
            suppress_below=settings.suppress_below,
        )
        try:
            yield
        finally:
            await client.close()

    def figures() -> Figures | None:
        if runtime.projection is None or runtime.coverage is None:
            return None
        return Figures(runtime.projection.model, runtime.coverage.policy, utc_now(), settings.suppress_below)

    api = RegionsApi(figures)
    app = asgi_app(
        broker,
        probe,
        registry,
        title="Lindungi reporting",
        description="Per-region aggregates of enrollment outcomes: coverage, flows, contributions, rankings.",
        routes=api.routes(),
        lifespan=lifespan,
    )
    # AsgiFastStream matches exact paths only; /regions/{code} needs a prefix match.
    app.not_found = api.with_fallback(app.not_found)  # type: ignore[method-assign,assignment]

    @app.after_startup
    async def start_background() -> None:
        runtime.tasks.append(asyncio.create_task(keep_writing()))
        if runtime.publisher is not None:
            runtime.tasks.append(
                asyncio.create_task(
                    runtime.publisher.run(settings.publish_interval_seconds, settings.targets_refresh_seconds)
                )
            )
        probe.ready = True

    @app.on_shutdown
    async def stop_background() -> None:
        probe.ready = False
        for task in runtime.tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        try:
            await write_state()  # what is not written now is read again at the next start
        except Exception:  # shutting down either way
            log.warning("writing the state at shutdown failed", exc_info=True)

    return app
