"""Operator commands: rebuild every aggregate from the outcome topic, load official figures.

Rebuild reads the outcome topic from its first offset with the same projection as the live service, into
fresh state (the previous state of that topic in the target database is dropped first), and stops at the end
offsets it saw when it started. Same records, same fold: the same figures. Stop the service first, or
rebuild into another database (`--database`) and point REPORTING_MONGODB_DATABASE at it. (A service left
running is not double counted, since every write is compare-and-set, but its figures jump while both write.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.reporting.domain.counters import ACTIVE
from services.reporting.domain.coverage import parse_targets
from services.reporting.handlers import Unreadable, read_outcome
from services.reporting.projection import Progress, Projection
from services.reporting.store import MongoReportingStore
from shared.regions import NATIONAL_CODE, load_regions

if TYPE_CHECKING:
    from services.reporting.settings import ReportingSettings
    from shared.events import Outcome


class RebuildError(Exception):
    pass


@dataclass(frozen=True)
class RebuildReport:
    database: str
    partitions: int
    records: int
    applied: int
    duplicates: int
    unreadable: int
    regions: int
    national_active: int

    def describe(self) -> str:
        return (
            f"Dibangun ulang / rebuilt into {self.database}: {self.partitions} partisi/partitions, "
            f"{self.records} rekaman/records, {self.applied} dihitung/counted, "
            f"{self.duplicates} duplikat/duplicates, {self.unreadable} tak terbaca/unreadable; "
            f"{self.regions} wilayah/regions, peserta aktif nasional/national active {self.national_active}"
        )


async def topic_partitions(bootstrap_servers: str, topic: str, **client_options: Any) -> list[int]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="lindungi-reporting-rebuild", **client_options
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"] for d in described if d["topic"] == topic and d["error_code"] == 0 for p in d["partitions"]
    )


async def rebuild(settings: ReportingSettings, database: str | None = None) -> RebuildReport:
    database = database or settings.mongodb_database
    topic = settings.outcomes_topic
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="lindungi-reporting-rebuild",
        group_id=None,  # no group: every partition, and no committed offsets touched
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        store = MongoReportingStore(client, database)
        await store.create_indexes()
        partitions = await topic_partitions(settings.kafka_bootstrap_servers, topic, **settings.kafka_client_options())
        if not partitions:
            raise RebuildError(f"topik {topic} tidak ada / topic {topic} does not exist")
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        end = await consumer.end_offsets(assigned)
        await store.drop_partitions(topic)
        projection = Projection(store, topic, settings.dedupe_window, settings.commit_interval_seconds)
        await projection.assign(partitions)
        progress, unreadable = Progress(), 0
        while remaining := [tp for tp in assigned if await consumer.position(tp) < end[tp]]:
            fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=settings.batch_max_records)
            batches: dict[int, list[tuple[int, Outcome | None]]] = {}
            for tp, records in fetched.items():
                for record in records:
                    # The live service dead-lettered these already: here they are only counted as read.
                    outcome = read_outcome(record, settings.max_message_bytes)
                    unreadable += isinstance(outcome, Unreadable)
                    batches.setdefault(tp.partition, []).append(
                        (record.offset, None if isinstance(outcome, Unreadable) else outcome)
                    )
            progress += await projection.apply(batches)
            if projection.commit_due():
                await projection.commit()
                await projection.compact()
        await projection.commit()
        await projection.compact()
        return RebuildReport(
            database=database,
            partitions=len(partitions),
            records=progress.records,
            applied=progress.applied,
            duplicates=progress.duplicates,
            unreadable=unreadable,
            regions=len(projection.model.codes()),
            national_active=projection.model.counters(NATIONAL_CODE).get(ACTIVE, 0),
        )
    finally:
        await consumer.stop()
        await client.close()


async def load_targets(settings: ReportingSettings, text: str, *, source: str, replace: bool) -> int:
    """Validate the whole file first (TargetsFileError lists every problem), then store it."""
    targets = parse_targets(text, load_regions())
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        store = MongoReportingStore(client, settings.mongodb_database)
        return await store.save_targets(targets, source=source, replace=replace)
    finally:
        await client.close()
