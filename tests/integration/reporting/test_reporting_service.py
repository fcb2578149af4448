"""The reporting service as a separate process against the real Kafka broker and the real MongoDB server.

Every figure published on the compacted topic and served by the API is compared with an independent
computation from the stream the test published (tests/unit/reporting/outcomes.py).

One module: each test is one scenario against the same running service, read back by the same helpers
(below); splitting it would only scatter them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient

from services.reporting.app import service_topics
from services.reporting.commands import topic_partitions
from services.reporting.domain.coverage import CoveragePolicy
from services.reporting.domain.figures import Figures
from services.reporting.projection import Projection
from services.reporting.settings import ReportingSettings
from services.reporting.store import MongoReportingStore
from shared import events as ev
from shared.messaging import ensure_topics
from shared.regions import load_regions
from tests.support import ROOT, ServiceProcess, consume_until, publish, publish_events
from tests.unit.reporting.outcomes import Simulation, compare, figures_of, make_participant, reference

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.integration

REGIONS = load_regions()


@dataclass
class Reporting:
    bootstrap: str
    mongodb_url: str
    env: dict[str, str]
    tmp_path: Path
    unique: str

    @property
    def outcomes(self) -> str:
        return self.env["REPORTING_OUTCOMES_TOPIC"]

    @property
    def aggregates(self) -> str:
        return self.env["REPORTING_REGION_AGGREGATES_TOPIC"]

    @property
    def dead_letters(self) -> str:
        return self.env["REPORTING_DEAD_LETTERS_TOPIC"]

    @property
    def database(self) -> str:
        return self.env["REPORTING_MONGODB_DATABASE"]

    def settings(self, **overrides: Any) -> ReportingSettings:
        fields = {k.removeprefix("REPORTING_").lower(): v for k, v in self.env.items() if k.startswith("REPORTING_")}
        return ReportingSettings(
            kafka_bootstrap_servers=self.bootstrap, mongodb_url=self.mongodb_url, **{**fields, **overrides}
        )

    def service(self, name: str = "a", **env: str) -> ServiceProcess:
        process = ServiceProcess("reporting", {**self.env, **env}, self.tmp_path / f"reporting-{name}.log")
        process.start()
        return process

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.reporting", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
async def reporting(
    service_env: dict[str, str], kafka_bootstrap: str, mongodb_url: str, unique: str, tmp_path: Path
) -> AsyncIterator[Reporting]:
    env = {
        **service_env,
        "REPORTING_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "REPORTING_REGION_AGGREGATES_TOPIC": f"aggregates.{unique}",
        "REPORTING_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        # Its own: the shared budget topic carries other tests' budgets, in regions this test does not expect.
        "REPORTING_BUDGET_TOPIC": f"budget.{unique}",
        "REPORTING_GROUP_ID": f"reporting-{unique}",
        "REPORTING_MONGODB_DATABASE": f"reporting_{unique}",
        "REPORTING_PUBLISH_INTERVAL_SECONDS": "0.3",
        "REPORTING_COMMIT_INTERVAL_SECONDS": "0.2",
        "REPORTING_TARGETS_REFRESH_SECONDS": "0.5",
    }
    running = Reporting(kafka_bootstrap, mongodb_url, env, tmp_path, unique)
    await ensure_topics(kafka_bootstrap, service_topics(running.settings()))
    yield running
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        for name in (running.database, f"{running.database}_rebuild"):
            await client.drop_database(name)
    finally:
        await client.close()


# --- Reading what the service produced ---------------------------------------------------------------------


async def end_offsets(bootstrap: str, topic: str) -> dict[str, int]:
    partitions = [TopicPartition(topic, p) for p in await topic_partitions(bootstrap, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return {f"{tp.topic}:{tp.partition}": n for tp, n in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def caught_up(service: ServiceProcess, expected: dict[str, int], within: float = 60) -> dict[str, Any]:
    """Wait until the service's read model reflects every offset published so far; its national figures."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=service.url) as client:
        while True:
            national = (await client.get("/regions/ID")).json()
            if national["source_offsets"] == expected:
                return national
            if time.monotonic() > deadline:
                raise TimeoutError(f"{national['source_offsets']} != {expected}\n{service.logs()[-3000:]}")
            await asyncio.sleep(0.2)


async def api_figures(service: ServiceProcess, codes: set[str]) -> dict[str, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=service.url) as client:
        listed = {r["region_code"] for r in (await client.get("/regions")).json()["regions"]}
        return {code: figures_of((await client.get(f"/regions/{code}")).json()) for code in sorted(codes | listed)}


def latest(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, ev.RegionAggregate]:
    snapshots: dict[str, ev.RegionAggregate] = {}
    for record in records:
        snapshot = ev.RegionAggregateUpdated.model_validate_json(record.value).data
        assert record.key == snapshot.region_code.encode()
        snapshots[snapshot.region_code] = snapshot
    return snapshots


class Expected:
    """The independent computation, per WIB date (a snapshot says which date its `today` is)."""

    def __init__(self, stream: list[tuple[str, ev.CloudEvent[Any]]]) -> None:
        self.stream = stream
        self._by_day: dict[date, dict[str, dict[str, Any]]] = {}

    def on(self, day: date) -> dict[str, dict[str, Any]]:
        if day not in self._by_day:
            self._by_day[day] = reference(self.stream, day)
        return self._by_day[day]

    def matches(self, snapshots: dict[str, ev.RegionAggregate]) -> list[str]:
        days = {s.business_date for s in snapshots.values()}
        day = days.pop() if len(days) == 1 else None
        if day is None:
            return ["(snapshots of several dates)"]
        return compare({c: figures_of(s) for c, s in snapshots.items()}, self.on(day))


async def published_snapshots(r: Reporting, expected: Expected, within: float = 60) -> dict[str, ev.RegionAggregate]:
    """Read the compacted topic until every region's latest snapshot equals the independent computation."""
    records = await consume_until(r.bootstrap, r.aggregates, lambda rs: expected.matches(latest(rs)) == [], within)
    return latest(records)


def add_up(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise sum of nested figures."""
    total: dict[str, Any] = {}
    for f in figures:
        for key, value in f.items():
            total[key] = add_up([total.get(key, {}), value]) if isinstance(value, dict) else total.get(key, 0) + value
    return total


def expected_ranking(expected: dict[str, dict[str, Any]], province: str | None = None) -> list[tuple[str, int]]:
    rows = []
    for region in REGIONS.at_level("regency/city"):
        population = REGIONS.population(region.code)
        assert population is not None
        denominator = round(population.total * 0.69 * 0.68)
        active = expected.get(region.code, {"active": 0})["active"]
        rows.append((-round(active / denominator, 6), -active, region.code))
    rows.sort()
    ranked = [(code, rank) for rank, (_, _, code) in enumerate(rows, start=1)]
    return [(code, rank) for code, rank in ranked if province is None or code.startswith(province + ".")]


async def load_figures(r: Reporting, database: str, partitions: int) -> dict[str, ev.RegionAggregate]:
    """Every region's figures as stored in a database, through the same read model the service uses."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(r.mongodb_url, tz_aware=True)
    try:
        projection = Projection(MongoReportingStore(client, database), r.outcomes, 10_000)
        await projection.assign(range(partitions))
        policy = CoveragePolicy(REGIONS, 0.69, 0.68)
        figures = Figures(projection.model, policy, datetime(2026, 1, 1, tzinfo=UTC))
        return {code: figures.region(code) for code in projection.model.codes()}
    finally:
        await client.close()


async def cursors_progress(r: Reporting) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(r.mongodb_url)
    try:
        docs = client[r.database]["partition_cursors"].find({"topic": r.outcomes}, {"next_offset": 1})
        return sum([doc["next_offset"] async for doc in docs])
    finally:
        await client.close()


async def all_rankings(client: httpx.AsyncClient, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of a ranking, following its pages (`next`) from the first."""
    body = (await client.get("/rankings", params=params)).json()
    rows = list(body["rankings"])
    while body["next"] is not None:
        body = (await client.get(body["next"])).json()
        rows += body["rankings"]
    assert len(rows) == body["total"]
    return rows


async def check_rollups_barometer_and_export(
    service: ServiceProcess,
    want: dict[str, dict[str, Any]],
    served: dict[str, dict[str, Any]],
    snapshots: dict[str, ev.RegionAggregate],
) -> None:
    async with httpx.AsyncClient(base_url=service.url) as client:
        # Roll-ups add up: children plus what is counted at the region's own level.
        for code in ("ID", "32", "32.71", "33.74"):
            body = (await client.get(f"/regions/{code}/children")).json()
            parts = [figures_of(c) for c in body["children"]] + [figures_of(body["unassigned"])]
            assert add_up(parts) == want[code], code
        # The barometer.
        national_ranks = await all_rankings(client, {"scope": "national"})
        assert [(r["region_code"], r["rank_national"]) for r in national_ranks] == expected_ranking(want)
        jabar = await all_rankings(client, {"scope": "32"})
        assert [r["region_code"] for r in jabar] == [c for c, _ in expected_ranking(want, "32")]
        assert snapshots["32.71"].rank_national == dict(expected_ranking(want))["32.71"]
        # The CSV export: one row per region with data, same figures.
        rows = list(csv.DictReader(io.StringIO((await client.get("/regions.csv")).text)))
        assert {r["region_code"]: int(r["active"]) for r in rows} == {c: f["active"] for c, f in served.items()}
        assert (await client.get("/rankings", params={"scope": "99"})).status_code == 400
        assert (await client.get("/regions/77.77")).status_code == 404


async def check_official_figures_replace_the_estimate(
    reporting: Reporting, service: ServiceProcess, active: int
) -> None:
    # Official figures loaded by an operator replace the estimate.
    targets = reporting.tmp_path / "targets.csv"
    targets.write_text(f"region_code,workforce,target_ratio\n32.71,{2 * active + 10},50%\n")
    loaded = reporting.command("load-targets", str(targets))
    assert loaded.returncode == 0, loaded.stderr
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=service.url) as client:
        while True:  # the service picks official figures up within REPORTING_TARGETS_REFRESH_SECONDS
            coverage = (await client.get("/regions/32.71")).json()["coverage"]
            if coverage["denominator_source"] == "official":
                break
            assert time.monotonic() < deadline, coverage
            await asyncio.sleep(0.2)
    assert coverage["denominator"] == 2 * active + 10
    assert coverage["distance_to_target"] == 5  # ceil(0.5 x (2a + 10)) - a


# --- The tests ---------------------------------------------------------------------------------------------


async def test_published_and_served_figures_equal_an_independent_computation_and_a_rebuild(
    reporting: Reporting,
) -> None:
    sim = Simulation(seed=11).run(1500)
    expected = Expected(sim.events)
    await publish_events(reporting.bootstrap, reporting.outcomes, sim.events)
    await publish(reporting.bootstrap, reporting.outcomes, [(b"garbage", b"not an event", {})])
    offsets = await end_offsets(reporting.bootstrap, reporting.outcomes)

    service = reporting.service()
    try:
        await service.wait_ready()
        national = await caught_up(service, offsets)
        today = date.fromisoformat(national["business_date"])
        want = expected.on(today)

        # The API: every region, every figure.
        served = await api_figures(service, set(want))
        assert compare(served, want) == []
        # The compacted topic: the latest snapshot of every region.
        snapshots = await published_snapshots(reporting, expected)
        assert set(snapshots) == {c for c in served if c in snapshots}
        assert all(s.source_offsets for s in snapshots.values())

        await check_rollups_barometer_and_export(service, want, served, snapshots)

        # The record that is not an outcome went to the dead-letter topic, once.
        letters = await consume_until(reporting.bootstrap, reporting.dead_letters, lambda rs: len(rs) >= 1)
        letter = ev.DeadLetterRecorded.model_validate_json(letters[0].value).data
        assert (letter.service, letter.source_topic, letter.error_type) == (
            "reporting",
            reporting.outcomes,
            "SchemaInvalid",
        )

        await check_official_figures_replace_the_estimate(reporting, service, want["32.71"]["active"])
    finally:
        service.stop()

    # Rebuild from the start of the topic into a fresh database: the same figures as the live state.
    rebuilt_db = f"{reporting.database}_rebuild"
    rebuilt = reporting.command("rebuild", "--database", rebuilt_db)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"{len(sim.events) + 1} rekaman/records" in rebuilt.stdout
    live = await load_figures(reporting, reporting.database, 12)
    again = await load_figures(reporting, rebuilt_db, 12)
    assert again == live
    assert compare({c: figures_of(s) for c, s in again.items()}, expected.on(again["ID"].business_date)) == []


async def test_republished_duplicates_change_nothing(reporting: Reporting) -> None:
    sim = Simulation(seed=12).run(400)
    expected = Expected(sim.events)
    await publish_events(reporting.bootstrap, reporting.outcomes, sim.events)
    service = reporting.service()
    try:
        await service.wait_ready()
        national = await caught_up(service, await end_offsets(reporting.bootstrap, reporting.outcomes))
        want = expected.on(date.fromisoformat(national["business_date"]))
        before = await api_figures(service, set(want))
        assert compare(before, want) == []
        await published_snapshots(reporting, expected)
        await asyncio.sleep(1.5)  # five publishing rounds after the last change
        published = await end_offsets(reporting.bootstrap, reporting.aggregates)

        # Registration crashed and published the same outcomes again (same event ids), a little later.
        await publish_events(reporting.bootstrap, reporting.outcomes, sim.events[::3])
        await caught_up(service, await end_offsets(reporting.bootstrap, reporting.outcomes))
        assert await api_figures(service, set(want)) == before
        await asyncio.sleep(1.5)
        # Nothing changed, so nothing was published.
        assert await end_offsets(reporting.bootstrap, reporting.aggregates) == published
    finally:
        service.stop()


async def test_kill_9_mid_stream_then_a_restart_counts_every_event_once(reporting: Reporting) -> None:
    sim = Simulation(seed=13).run(3000)
    expected = Expected(sim.events)
    await publish_events(reporting.bootstrap, reporting.outcomes, sim.events)
    offsets = await end_offsets(reporting.bootstrap, reporting.outcomes)
    total = sum(offsets.values())

    # Small batches written often, so the state moves in many steps and the kill lands between two writes
    # (or inside one).
    first = reporting.service("first", REPORTING_BATCH_MAX_RECORDS="20", REPORTING_COMMIT_INTERVAL_SECONDS="0.05")
    try:
        await first.wait_ready()
        deadline = time.monotonic() + 60
        while await cursors_progress(reporting) < total // 5:
            assert time.monotonic() < deadline, first.logs()[-3000:]
            await asyncio.sleep(0.02)
        first.kill()
    finally:
        first.stop()
    assert await cursors_progress(reporting) < total, "the stream was consumed before the kill: make it longer"

    second = reporting.service("second")
    try:
        await second.wait_ready()
        national = await caught_up(second, offsets, within=90)
        want = expected.on(date.fromisoformat(national["business_date"]))
        assert compare(await api_figures(second, set(want)), want) == []
        await published_snapshots(reporting, expected)
    finally:
        second.stop()


async def test_ten_thousand_changes_to_one_region_are_published_a_few_times(reporting: Reporting) -> None:
    service = reporting.service(REPORTING_PUBLISH_INTERVAL_SECONDS="1.0")
    try:
        await service.wait_ready()
        now = datetime.now(UTC)
        stream = []
        for i in range(10_000):
            participant = make_participant(f"c{i}-{reporting.unique}", region="32.71", kecamatan="32.71.01")
            data = ev.Registered(
                request_id=f"r{i}",
                partner_id="bogor-hr",
                request_event_id=f"q{i}",
                version=1,
                participant=participant,
            )
            stream.append(
                (
                    participant.nik_hash,
                    ev.ParticipantRegistered(source="lindungi/registration", time=now, data=data),
                )
            )
        started = time.monotonic()
        await publish_events(reporting.bootstrap, reporting.outcomes, stream)
        await caught_up(service, await end_offsets(reporting.bootstrap, reporting.outcomes))
        elapsed = time.monotonic() - started
        snapshots = await consume_until(
            reporting.bootstrap,
            reporting.aggregates,
            lambda rs: latest(rs).get("32.71.01") is not None and latest(rs)["32.71.01"].active == 10_000,
        )
    finally:
        service.stop()
    for code in ("32.71.01", "32.71", "32", "ID"):
        count = sum(r.key == code.encode() for r in snapshots)
        assert 1 <= count <= elapsed / 1.0 + 3, (code, count, elapsed)


async def test_a_rebalance_between_two_instances_loses_and_doubles_nothing(reporting: Reporting) -> None:
    sim = Simulation(seed=14).run(3000)
    expected = Expected(sim.events)
    thirds = [sim.events[:1000], sim.events[1000:2000], sim.events[2000:]]
    a = reporting.service("a")
    b: ServiceProcess | None = None
    try:
        await a.wait_ready()
        await publish_events(reporting.bootstrap, reporting.outcomes, thirds[0])
        await caught_up(a, await end_offsets(reporting.bootstrap, reporting.outcomes))

        b = reporting.service("b")  # joins the group: partitions move from a to b
        await b.wait_ready()
        await publish_events(reporting.bootstrap, reporting.outcomes, thirds[1])
        offsets = await end_offsets(reporting.bootstrap, reporting.outcomes)
        await caught_up(a, offsets)  # each instance serves every partition, its own and the other's
        await caught_up(b, offsets)

        a.stop()  # leaves the group: b takes every partition
        await publish_events(reporting.bootstrap, reporting.outcomes, thirds[2])
        national = await caught_up(b, await end_offsets(reporting.bootstrap, reporting.outcomes))
        want = expected.on(date.fromisoformat(national["business_date"]))
        assert compare(await api_figures(b, set(want)), want) == []
        await published_snapshots(reporting, expected)
    finally:
        a.stop()
        if b is not None:
            b.stop()


async def test_rankings_are_paged_filtered_and_put_regions_without_data_last(reporting: Reporting) -> None:
    sim = Simulation(seed=23).run(400)
    await publish_events(reporting.bootstrap, reporting.outcomes, sim.events)
    offsets = await end_offsets(reporting.bootstrap, reporting.outcomes)
    service = reporting.service()
    try:
        await service.wait_ready()
        national = await caught_up(service, offsets)
        want = Expected(sim.events).on(date.fromisoformat(national["business_date"]))
        regencies = expected_ranking(want)
        with_data = [code for code, _ in regencies if want.get(code, {"active": 0})["active"] > 0]
        async with httpx.AsyncClient(base_url=service.url) as client:
            # A page, the total, and the next page where the first one stopped.
            first = (await client.get("/rankings", params={"limit": "10"})).json()
            assert (first["total"], first["limit"], first["offset"]) == (len(regencies), 10, 0)
            assert [r["region_code"] for r in first["rankings"]] == [c for c, _ in regencies[:10]]
            second = (await client.get(first["next"])).json()
            assert [r["position"] for r in second["rankings"]] == list(range(11, 21))
            assert [r["region_code"] for r in second["rankings"]] == [c for c, _ in regencies[10:20]]
            assert len((await client.get("/rankings")).json()["rankings"]) == 50  # the default page
            # Coverage first, regions without participants after every region with some.
            rows = await all_rankings(client, {"limit": "500"})
            assert [r["region_code"] for r in rows[: len(with_data)]] == with_data
            assert {r["active"] for r in rows[len(with_data) :]} == {0}
            ratios = [r["coverage"]["ratio"] for r in rows]
            assert ratios == sorted(ratios, reverse=True)
            # One province's regencies/cities; the provinces themselves.
            jabar = await all_rankings(client, {"province": "32", "limit": "7"})
            assert [r["region_code"] for r in jabar] == [c for c, _ in expected_ranking(want, "32")]
            provinces = await all_rankings(client, {"level": "province"})
            assert len(provinces) == len(REGIONS.at_level("province"))
            assert {r["region_code"]: r["active"] for r in provinces} == {
                p.code: want.get(p.code, {"active": 0})["active"] for p in REGIONS.at_level("province")
            }
            assert [r["active"] > 0 for r in provinces] == sorted((r["active"] > 0 for r in provinces), reverse=True)
            # What it cannot answer, said in both languages.
            for bad in ({"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"province": "99"}, {"level": "kecamatan"}):
                response = await client.get("/rankings", params=bad)
                assert response.status_code == 400, bad
                assert set(response.json()["error"]) == {"message_id", "message_en"}
    finally:
        service.stop()
