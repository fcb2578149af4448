"""The fold, pure: figures equal an independent computation; redeliveries, duplicates and crashes change
nothing; children add up to their parent; a participation moves between regions and states as it should.

One module: every test drives the same fold through the same partitioned stream, batches and in-memory
store (the helpers below); splitting it would only scatter them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.reporting.domain.counters import (
    ACTIVE,
    FLOWS,
    Flow,
    business_date,
    expired_periods,
    flow_key,
    leaf_of,
    level_of,
    lineage,
)
from services.reporting.domain.coverage import CoveragePolicy, Target
from services.reporting.domain.figures import Figures
from services.reporting.domain.partitions import RecentEvents, event_digest
from services.reporting.projection import Projection
from services.reporting.publishing import CoverageTargets, SnapshotPublisher
from shared import events as ev
from shared.regions import load_regions
from tests.unit.reporting.memory_store import Crash, MemoryStore
from tests.unit.reporting.outcomes import Simulation, compare, figures_of, make_participant, reference

if TYPE_CHECKING:
    from collections.abc import Sequence

TOPIC = "outcomes"
POLICY = CoveragePolicy(load_regions(), working_age_share=0.69, labour_force_participation=0.68)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def partitioned(stream: list[tuple[str, Any]], partitions: int) -> dict[int, list[tuple[int, Any]]]:
    """What the broker does: by key to a partition, offsets in publication order."""
    logs: dict[int, list[tuple[int, Any]]] = {p: [] for p in range(partitions)}
    for key, event in stream:
        log = logs[zlib.crc32(key.encode()) % partitions]
        log.append((len(log), event))
    return logs


def batches(log: list[tuple[int, Any]], rng: random.Random) -> list[list[tuple[int, Any]]]:
    out, i = [], 0
    while i < len(log):
        size = rng.randint(1, 40)
        out.append(log[i : i + size])
        i += size
    return out


async def consume(projection: Projection, logs: dict[int, list[tuple[int, Any]]], rng: random.Random) -> None:
    """Every partition's log in random batch sizes, partitions interleaved, as a consumer would see them,
    written now and then and at the end."""
    pending = {p: batches(log, rng) for p, log in logs.items()}
    while any(pending.values()):
        partition = rng.choice([p for p, b in pending.items() if b])
        await projection.apply({partition: pending[partition].pop(0)})
        if rng.random() < 0.3:
            await written(projection)
    await written(projection)


async def written(projection: Projection) -> None:
    """What the service does every commit interval: the cursors, then compaction."""
    await projection.commit()
    await projection.compact()


def figures_by_region(projection: Projection, as_of: datetime) -> dict[str, dict[str, Any]]:
    figures = Figures(projection.model, POLICY, as_of)
    return {code: figures_of(figures.region(code)) for code in projection.model.codes()}


# How much each write compacts (seconds, overlay limit): every chunk behind the cursors; none, so the cursors
# carry every leaf; only partitions whose cursor carries more than 3 leaves; every chunk, forced.
COMPACTIONS = st.sampled_from([(math.inf, 500), (0.0, 10**9), (0.0, 3), (0.0, 0)])


async def started(
    store: MemoryStore, partitions: int, window: int = 1000, compaction: tuple[float, int] = (math.inf, 500)
) -> Projection:
    seconds, limit = compaction
    projection = Projection(store, TOPIC, window, compaction_seconds=seconds, overlay_limit=limit)
    await projection.assign(range(partitions))
    return projection


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 250), partitions=st.integers(1, 4), compaction=COMPACTIONS)
def test_figures_equal_an_independent_computation(
    seed: int, steps: int, partitions: int, compaction: tuple[float, int]
) -> None:
    """Live, and as stored (chunks with the cursors' overlay over them), however far compaction got."""
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        store = MemoryStore()
        projection = await started(store, partitions, compaction=compaction)
        await consume(projection, partitioned(sim.events, partitions), rng)
        restarted = await started(store, partitions, compaction=compaction)
        return figures_by_region(projection, sim.now), figures_by_region(restarted, sim.now)

    live, stored = asyncio.run(scenario())
    expected = reference(sim.events, business_date(sim.now))
    assert compare(live, expected) == []
    assert stored == live


def test_a_write_is_one_cursor_per_partition_and_the_figures_show_it_before_any_chunk_is_rewritten() -> None:
    sim = Simulation(11).run(80)
    logs = partitioned(sim.events, 2)

    async def scenario() -> None:
        store = MemoryStore()
        projection = await started(store, 2, compaction=(0.0, 10**9))  # compaction never due
        for partition, log in logs.items():
            await projection.apply({partition: log})
        assert await projection.commit() == {p: len(log) for p, log in logs.items()}
        assert store.chunk_docs == {}  # only the two cursors were written, carrying every leaf
        expected = reference(sim.events, business_date(sim.now))
        assert compare(figures_by_region(projection, sim.now), expected) == []
        assert compare(figures_by_region(await started(store, 2), sim.now), expected) == []
        projection.compaction_seconds = math.inf
        assert await projection.compact() > 0
        assert all(store.overlay_docs.values())  # the chunks hold the leaves now; the next cursors drop them
        await projection.apply({0: [(len(logs[0]), None)]})  # a record that counts nothing moves the cursor
        await projection.commit()
        assert store.overlay_docs[TOPIC, 0] == {}
        assert compare(figures_by_region(await started(store, 2), sim.now), expected) == []

    asyncio.run(scenario())


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 150), copies=st.integers(1, 30))
def test_redeliveries_and_republished_duplicates_change_nothing(seed: int, steps: int, copies: int) -> None:
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)
    # Registration crashed and published some outcomes again, with the same event ids, a little later.
    stream = list(sim.events)
    for _ in range(copies):
        position = rng.randrange(len(stream))
        stream.insert(min(len(stream), position + rng.randint(1, 20)), stream[position])

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        projection = await started(MemoryStore(), 2)
        logs = partitioned(stream, 2)
        await consume(projection, logs, rng)
        once = figures_by_region(projection, sim.now)
        await consume(projection, logs, rng)  # the consumer is sent everything again
        return once, figures_by_region(projection, sim.now)

    once, twice = asyncio.run(scenario())
    assert compare(once, reference(sim.events, business_date(sim.now))) == []
    assert once == twice


def stored_offset(store: MemoryStore, partition: int) -> int:
    return store.cursor_docs.get((TOPIC, partition), (0, b""))[0]


CRASHES = st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=6)  # (after n writes, landed)


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(20, 200), crashes=CRASHES, compaction=COMPACTIONS)
def test_a_crash_between_writes_then_a_restart_counts_every_event_once(
    seed: int, steps: int, crashes: list[tuple[int, bool]], compaction: tuple[float, int]
) -> None:
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)

    async def scenario() -> dict[str, dict[str, Any]]:
        store = MemoryStore()
        logs = partitioned(sim.events, 2)
        projection = await started(store, 2, compaction=compaction)
        plan = list(crashes)
        pending = {p: batches(log, rng) for p, log in logs.items()}
        while any(pending.values()):
            partition = rng.choice([p for p, b in pending.items() if b])
            await projection.apply({partition: pending[partition].pop(0)})
            if rng.random() > 0.4:
                continue
            if plan:
                store.crash_after_writes, store.crash_after_landing = plan.pop()
            try:
                await written(projection)
            except Crash:
                # The process died: a new one loads what is stored and reads from each stored cursor.
                projection = await started(store, 2, compaction=compaction)
                pending = {
                    p: batches([r for r in log if r[0] >= stored_offset(store, p)], rng) for p, log in logs.items()
                }
        store.crash_after_writes = None
        await written(projection)
        return figures_by_region(projection, sim.now)

    assert compare(asyncio.run(scenario()), reference(sim.events, business_date(sim.now))) == []


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(20, 200), failures=CRASHES, compaction=COMPACTIONS)
def test_a_write_that_failed_part_way_is_written_again_later(
    seed: int, steps: int, failures: list[tuple[int, bool]], compaction: tuple[float, int]
) -> None:
    """The store went away in the middle of a write (before or after a document landed); the process lives on
    and writes again next time."""
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        store = MemoryStore()
        projection = await started(store, 2, compaction=compaction)
        plan = list(failures)
        pending = {p: batches(log, rng) for p, log in partitioned(sim.events, 2).items()}
        while any(pending.values()):
            partition = rng.choice([p for p, b in pending.items() if b])
            await projection.apply({partition: pending[partition].pop(0)})
            if plan and rng.random() < 0.4:
                store.crash_after_writes, store.crash_after_landing = plan.pop()
            with contextlib.suppress(Crash):
                await written(projection)
        store.crash_after_writes = None
        await written(projection)
        assert projection.owned == {0, 1}  # no write was taken for another consumer's
        restarted = await started(store, 2)  # and what is stored is the same
        return figures_by_region(projection, sim.now), figures_by_region(restarted, sim.now)

    live, stored = asyncio.run(scenario())
    assert compare(live, reference(sim.events, business_date(sim.now))) == []
    assert stored == live


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(20, 200), failures=CRASHES, compaction=COMPACTIONS)
def test_batches_folded_while_the_state_is_being_written_are_written_next_time(
    seed: int, steps: int, failures: list[tuple[int, bool]], compaction: tuple[float, int]
) -> None:
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        store = MemoryStore()
        projection = await started(store, 2, compaction=compaction)
        plan = list(failures)
        pending = {p: batches(log, rng) for p, log in partitioned(sim.events, 2).items()}

        async def consumer() -> None:
            while any(pending.values()):
                partition = rng.choice([p for p, b in pending.items() if b])
                await projection.apply({partition: pending[partition].pop(0)})
                await asyncio.sleep(0)

        async def writer() -> None:
            while any(pending.values()):
                if plan and rng.random() < 0.3:
                    store.crash_after_writes, store.crash_after_landing = plan.pop()
                with contextlib.suppress(Crash):
                    await written(projection)
                await asyncio.sleep(0)

        await asyncio.gather(consumer(), writer())
        store.crash_after_writes = None
        await written(projection)
        restarted = await started(store, 2, compaction=compaction)
        return figures_by_region(projection, sim.now), figures_by_region(restarted, sim.now)

    live, stored = asyncio.run(scenario())
    assert compare(live, reference(sim.events, business_date(sim.now))) == []
    assert stored == live


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(20, 200), crashes=CRASHES, compaction=COMPACTIONS)
def test_a_crash_after_a_chunk_was_compacted_ahead_of_its_cursor_counts_every_event_once(
    seed: int, steps: int, crashes: list[tuple[int, bool]], compaction: tuple[float, int]
) -> None:
    """Batches folded while chunks are rewritten put those chunks ahead of the stored cursor; a crash before the
    next cursor, then a restart from it, must neither lose what the chunks hold nor count it twice."""
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)
    logs = partitioned(sim.events, 2)

    async def scenario() -> dict[str, dict[str, Any]]:
        store = MemoryStore()
        projection = await started(store, 2, compaction=compaction)
        plan = list(crashes)
        pending = {p: batches(log, rng) for p, log in logs.items()}
        crashed = asyncio.Event()

        async def consumer() -> None:
            while any(pending.values()) and not crashed.is_set():
                partition = rng.choice([p for p, b in pending.items() if b])
                await projection.apply({partition: pending[partition].pop(0)})
                await asyncio.sleep(0)

        async def writer() -> None:
            while any(pending.values()) and not crashed.is_set():
                if plan and rng.random() < 0.3:
                    store.crash_after_writes, store.crash_after_landing = plan.pop()
                try:
                    await written(projection)
                except Crash:
                    crashed.set()
                await asyncio.sleep(0)

        while True:
            crashed.clear()
            await asyncio.gather(consumer(), writer())
            if not crashed.is_set():
                break
            # The process died: a new one loads what is stored and reads from each stored cursor.
            projection = await started(store, 2, compaction=compaction)
            pending = {p: batches([r for r in log if r[0] >= stored_offset(store, p)], rng) for p, log in logs.items()}
        store.crash_after_writes = None
        await written(projection)
        restarted = await started(store, 2, compaction=compaction)
        assert figures_by_region(restarted, sim.now) == figures_by_region(projection, sim.now)
        return figures_by_region(projection, sim.now)

    assert compare(asyncio.run(scenario()), reference(sim.events, business_date(sim.now))) == []


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(20, 200), yields=st.integers(0, 12))
def test_a_write_cancelled_at_shutdown_is_written_by_the_final_revoke(seed: int, steps: int, yields: int) -> None:
    """SIGTERM cancels the periodic write somewhere inside it (after some chunks, or none, landed); the
    revocation that follows still writes everything, as the partitions' owner, and nothing is counted twice."""
    sim = Simulation(seed).run(steps)
    rng = random.Random(seed)

    async def scenario() -> tuple[dict[int, int | None], dict[str, dict[str, Any]]]:
        store = MemoryStore()
        projection = await started(store, 2)
        for partition, log in partitioned(sim.events, 2).items():
            for batch in batches(log, rng):
                await projection.apply({partition: batch})
        writing = asyncio.create_task(written(projection))
        for _ in range(yields):
            await asyncio.sleep(0)
        writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writing
        await projection.revoke([0, 1])
        assert projection.owned == set()
        restarted = await started(store, 2)
        return {p: restarted.next_offset(p) for p in (0, 1)}, figures_by_region(restarted, sim.now)

    resume, stored = asyncio.run(scenario())
    assert resume == {p: len(log) for p, log in partitioned(sim.events, 2).items()}  # every record stored
    assert compare(stored, reference(sim.events, business_date(sim.now))) == []


def test_a_consumer_that_lost_its_partition_cannot_overwrite_the_new_owner() -> None:
    """A rebalance the old owner did not notice: both fold the same partition; every event still counts once."""
    sim = Simulation(3).run(120)
    log = partitioned(sim.events, 1)[0]

    async def scenario() -> dict[str, dict[str, Any]]:
        store = MemoryStore()
        old, new = await started(store, 1), await started(store, 1)
        await old.apply({0: log[:40]})
        await new.apply({0: log[:60]})
        await written(new)
        await old.apply({0: log[40:80]})
        await written(old)  # refused by the store: the old owner lets the partition go
        assert old.owned == set()
        await new.apply({0: log[60:]})
        await written(new)
        await old.refresh()  # the old owner's read model now shows what the new owner wrote
        assert figures_by_region(old, sim.now) == figures_by_region(new, sim.now)
        return figures_by_region(new, sim.now)

    assert compare(asyncio.run(scenario()), reference(sim.events, business_date(sim.now))) == []


def test_a_partition_lost_mid_write_and_given_back_shows_only_what_is_stored() -> None:
    """The read model holds no copy of each partition's share: what was folded but never written (pending, or
    in flight when the write was refused) comes out of it exactly when the partition is read again."""
    sim = Simulation(5).run(160)
    log = partitioned(sim.events, 1)[0]

    async def scenario() -> None:
        store = MemoryStore()
        old = await started(store, 1)
        await old.apply({0: log[:30]})
        await written(old)
        new = await started(store, 1)  # a rebalance `old` has not noticed yet
        await new.apply({0: log[30:50]})
        await written(new)
        await old.apply({0: log[30:70]})
        # folded while the refused write is in flight: neither batch ever reaches the store from `old`
        await asyncio.gather(written(old), old.apply({0: log[70:90]}))
        assert old.owned == set()
        await new.revoke([0])
        resume = await old.assign([0])  # given back: the model now shows exactly what `new` wrote
        assert resume == {0: 50}
        assert figures_by_region(old, sim.now) == figures_by_region(new, sim.now)
        await old.apply({0: log[50:]})
        await written(old)
        assert compare(figures_by_region(old, sim.now), reference(sim.events, business_date(sim.now))) == []

    asyncio.run(scenario())


@FAST
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 200))
def test_children_add_up_to_their_parent(seed: int, steps: int) -> None:
    sim = Simulation(seed).run(steps)

    async def scenario() -> Projection:
        projection = await started(MemoryStore(), 3)
        await consume(projection, partitioned(sim.events, 3), random.Random(seed))
        return projection

    projection = asyncio.run(scenario())
    model = projection.model
    at_own_level: dict[str, dict[str, int]] = {}
    for state in projection.partitions.values():
        for leaf, counters in state.leaves():
            own = at_own_level.setdefault(leaf, {})
            for key, value in counters.items():
                own[key] = own.get(key, 0) + value
    for code in model.codes():
        total = dict(at_own_level.get(code, {}))
        for child in model.children_with_data(code):
            for key, value in model.counters(child).items():
                total[key] = total.get(key, 0) + value
        assert {k: v for k, v in total.items() if v} == model.counters(code), code
        assert model.own_level(code) == {k: v for k, v in at_own_level.get(code, {}).items() if v}


def _event(kind: type[ev.CloudEvent[Any]], data: Any, when: datetime) -> ev.CloudEvent[Any]:
    return kind(source="lindungi/registration", time=when, data=data)


def test_update_terminate_and_reactivate_move_the_counts() -> None:
    now = datetime.now(UTC)
    base = {"partner_id": "p", "request_event_id": "q"}
    first = make_participant("a", region="32.71", kecamatan="32.71.01")
    moved = make_participant("a", region="33.74", kecamatan="33.74.02", funding=ev.FundingSource.CSR)
    ended = moved.model_copy(update={"status": ev.ParticipantStatus.TERMINATED})
    back = ended.model_copy(update={"status": ev.ParticipantStatus.ACTIVE})
    steps = [
        _event(ev.ParticipantRegistered, ev.Registered(request_id="1", version=1, participant=first, **base), now),
        _event(
            ev.ParticipantUpdated,
            ev.Updated(request_id="2", version=2, participant=moved, previous=first, **base),
            now,
        ),
        _event(
            ev.ParticipantTerminated,
            ev.Terminated(
                request_id="3",
                version=3,
                participant=ended,
                previous=moved,
                reason=ev.TerminationReason.MOVED,
                **base,
            ),
            now,
        ),
        _event(
            ev.ParticipantReactivated,
            ev.Reactivated(request_id="4", version=4, participant=back, previous=ended, **base),
            now - timedelta(days=40),
        ),
    ]
    expected_active = [
        {"32.71.01": 1, "32": 1, "33.74.02": 0, "33": 0, "ID": 1},
        {"32.71.01": 0, "32": 0, "33.74.02": 1, "33": 1, "ID": 1},
        {"32.71.01": 0, "32": 0, "33.74.02": 0, "33": 0, "ID": 0},
        {"32.71.01": 0, "32": 0, "33.74.02": 1, "33": 1, "ID": 1},
    ]

    async def scenario() -> None:
        projection = await started(MemoryStore(), 1)
        for offset, (event, active) in enumerate(zip(steps, expected_active, strict=True)):
            await projection.apply({0: [(offset, event)]})
            await written(projection)
            assert {c: projection.model.counters(c).get(ACTIVE, 0) for c in active} == active
        model = projection.model
        assert model.counters("32.71.01").get(flow_key("enrollments"), 0) == 1
        assert model.counters("33.74").get(flow_key("terminations"), 0) == 1
        assert model.counters("33.74").get(flow_key("reactivations"), 0) == 1
        assert model.counters("33.74").get("funding/CSR") == 1
        assert model.counters("32.71").get("funding/APBD", 0) == 0
        today = Figures(model, POLICY, now).region("33.74")
        assert today.reactivations == {"today": 0, "this_month": 0, "total": 1}  # 40 days ago
        assert today.terminations["today"] == 1

    asyncio.run(scenario())


def test_a_participant_is_counted_in_their_kecamatan_only_inside_the_responsible_region() -> None:
    assert leaf_of(make_participant("a", region="32.71", kecamatan="32.71.03")) == "32.71.03"
    assert leaf_of(make_participant("a", region="32.71", kecamatan=None)) == "32.71"
    assert leaf_of(make_participant("a", region="32.71", kecamatan="32.73.01")) == "32.71"
    assert lineage("32.71.03") == ("32.71.03", "32.71", "32", "ID")


@given(days=st.lists(st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)), min_size=1, max_size=30))
def test_the_day_and_month_window_is_bounded_and_pruning_once_equals_pruning_each_time(
    days: list[date],
) -> None:
    def key_day(d: date) -> str:
        return flow_key("enrollments", f"day/{d.isoformat()}")

    def key_month(d: date) -> str:
        return flow_key("enrollments", f"month/{d.year:04d}-{d.month:02d}")

    each: dict[str, int] = {}
    once: dict[str, int] = {}
    for d in days:
        for counters in (each, once):
            counters[key_day(d)] = counters.get(key_day(d), 0) + 1
            counters[key_month(d)] = counters.get(key_month(d), 0) + 1
        for key in expired_periods(each):
            del each[key]
    for key in expired_periods(once):
        del once[key]
    assert each == once
    assert len([k for k in once if "/day/" in k]) <= 2
    assert len([k for k in once if "/month/" in k]) <= 2
    latest = max(days)
    assert once[key_day(latest)] == days.count(latest)


def _expired_by_the_rule(counters: dict[str, int]) -> set[str]:
    """The window's rule written out plainly: every flow's day older than the latest day less one, every
    flow's month older than the latest month less one."""
    periods = [key.split("/", 3) for key in counters if key.startswith("flow/") and key.count("/") == 3]
    days = {date.fromisoformat(p[3]) for p in periods if p[2] == "day"}
    months = {p[3] for p in periods if p[2] == "month"}
    expired = set()
    if days:
        expired |= {
            f"flow/{p[1]}/day/{p[3]}"
            for p in periods
            if p[2] == "day" and date.fromisoformat(p[3]) < max(days) - timedelta(days=1)
        }
    if months:
        newest = date.fromisoformat(max(months) + "-01")
        keep = (newest - timedelta(days=1)).strftime("%Y-%m")
        expired |= {f"flow/{p[1]}/month/{p[3]}" for p in periods if p[2] == "month" and p[3] < keep}
    return expired


@given(
    flows=st.lists(
        st.tuples(
            st.sampled_from(FLOWS),
            st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
            st.booleans(),
        ),
        max_size=12,
    ),
    others=st.lists(st.sampled_from(["active", "segment/PU", "contrib/APBD/apbd_regency", "reject_partner/p-1"])),
)
def test_the_expired_periods_are_those_of_the_rule_whatever_else_a_leaf_holds(
    flows: list[tuple[Flow, date, bool]], others: list[str]
) -> None:
    counters = dict.fromkeys(others, 1)
    for flow, day, with_month in flows:
        counters[flow_key(flow)] = 1
        counters[flow_key(flow, f"day/{day.isoformat()}")] = 1
        if with_month:
            counters[flow_key(flow, f"month/{day.year:04d}-{day.month:02d}")] = 1
    expired = expired_periods(counters)
    assert len(expired) == len(set(expired))
    assert set(expired) == _expired_by_the_rule(counters)


def test_the_dedupe_window_keeps_the_latest_ids_and_round_trips() -> None:
    window = RecentEvents(3)
    for i in range(5):
        window.add(event_digest(f"e{i}"))
    assert event_digest("e1") not in window
    assert all(event_digest(f"e{i}") in window for i in (2, 3, 4))
    again = RecentEvents.from_bytes(3, window.to_bytes())
    assert again.to_bytes() == window.to_bytes()
    assert len(RecentEvents.from_bytes(2, window.to_bytes())) == 2  # a smaller window keeps the newest


def test_a_duplicate_further_behind_than_the_window_is_counted_again() -> None:
    """The documented bound: the window is per partition and counts records, not time."""
    sim = Simulation(7).run(30)
    registered = next(e for _, e in sim.events if isinstance(e, ev.ParticipantRegistered))
    stream = [(0, registered)] + [(i, e) for i, (_, e) in enumerate(sim.events, start=1) if e.id != registered.id]
    stream.append((len(stream), registered))

    async def active_with(window: int) -> int:
        projection = Projection(MemoryStore(), TOPIC, window)
        await projection.assign([0])
        await projection.apply({0: stream})
        await written(projection)
        return projection.model.counters("ID").get(flow_key("enrollments"), 0)

    expected = sum(isinstance(e, ev.ParticipantRegistered) for _, e in sim.events)
    assert asyncio.run(active_with(len(stream))) == expected
    assert asyncio.run(active_with(5)) == expected + 1


def test_a_migration_is_active_but_counted_as_migrated_not_as_a_new_enrollment() -> None:
    now = datetime.now(UTC)
    base = {"partner_id": "p", "request_event_id": "q", "version": 1}
    moved = make_participant("m", region="32.71", kecamatan="32.71.01").model_copy(
        update={"migrated_from": "SIPP 2019"}
    )
    new = make_participant("n", region="32.71", kecamatan="32.71.01")
    steps = [
        _event(ev.ParticipantRegistered, ev.Registered(request_id="1", participant=moved, **base), now),
        _event(ev.ParticipantRegistered, ev.Registered(request_id="2", participant=new, **base), now),
    ]

    async def scenario() -> None:
        projection = await started(MemoryStore(), 1)
        await projection.apply({0: list(enumerate(steps))})
        await written(projection)
        counters = projection.model.counters("32.71.01")
        assert counters.get(ACTIVE) == 2
        assert counters.get(flow_key("enrollments")) == 1
        assert counters.get(flow_key("migrations")) == 1

    asyncio.run(scenario())


class NoTargets:
    async def load_targets(self) -> dict[str, Target]:
        return {}


def test_a_round_publishes_the_coarser_regions_before_the_kecamatan_and_then_only_what_changed() -> None:
    sim = Simulation(5).run(150)
    sent: list[list[str]] = []

    async def send(snapshots: Sequence[ev.RegionAggregate]) -> None:
        sent.append([s.region_code for s in snapshots])

    async def scenario() -> set[str]:
        projection = await started(MemoryStore(), 2)
        for partition, log in partitioned(sim.events, 2).items():
            await projection.apply({partition: log})
        await written(projection)
        publisher = SnapshotPublisher(projection, CoverageTargets(POLICY, NoTargets()), send, clock=lambda: sim.now)
        await publisher.flush()
        await publisher.flush()  # nothing changed since
        return projection.model.codes()

    codes = asyncio.run(scenario())
    coarse, reranked, kecamatan = sent[0], sent[1], sent[2]
    assert coarse
    assert reranked == []  # nothing was published before: every region's figures are new
    assert kecamatan
    assert all(level_of(code) != "kecamatan" for code in coarse)
    assert all(level_of(code) == "kecamatan" for code in kecamatan)
    assert set(coarse) | set(kecamatan) == codes
    assert sent[3:] == [[], [], []]


def test_catching_up_the_kecamatan_go_out_every_catch_up_interval_and_all_of_them_once_caught_up() -> None:
    """While batches come full, a round publishes the coarser regions it always does, and the kecamatan only
    once `catch_up_kecamatan_every` has passed since their last wave; none is lost in between."""
    sim = Simulation(5).run(150)
    rounds: list[list[str]] = []
    clock = {"now": sim.now}
    behind = {"now": True}

    async def send(snapshots: Sequence[ev.RegionAggregate]) -> None:
        rounds[-1].extend(s.region_code for s in snapshots)

    async def flush(publisher: SnapshotPublisher, seconds: int) -> list[str]:
        clock["now"] = sim.now + timedelta(seconds=seconds)
        rounds.append([])
        await publisher.flush()
        return rounds[-1]

    async def scenario() -> None:
        projection = await started(MemoryStore(), 1)
        publisher = SnapshotPublisher(
            projection,
            CoverageTargets(POLICY, NoTargets()),
            send,
            clock=lambda: clock["now"],
            catching_up=lambda: behind["now"],
            catch_up_kecamatan_every=5,
        )
        await projection.apply({0: [(offset, event) for offset, (_, event) in enumerate(sim.events)]})
        await written(projection)
        first = await flush(publisher, 0)  # the first round takes every region, kecamatan included
        assert any(level_of(code) == "kecamatan" for code in first)
        offset = len(sim.events)
        boosted = [("33.74", "33.74.02"), ("33.72", "33.72.01"), ("33.74", "33.74.03")]
        for seconds, (region, kecamatan) in enumerate(boosted, start=1):
            await projection.apply({0: _boost(sim, offset, region, kecamatan, 5)})
            offset += 5
            await written(projection)
            published = await flush(publisher, seconds)
            assert region in published  # the coarser regions every round
            assert not any(level_of(code) == "kecamatan" for code in published)
        assert set(await flush(publisher, 5)) >= {"33.74.02", "33.72.01", "33.74.03"}  # five seconds on
        await projection.apply({0: _boost(sim, offset, "33.74", "33.74.02", 5)})
        await written(projection)
        behind["now"] = False  # a short batch: caught up, the next round takes the kecamatan at once
        assert "33.74.02" in await flush(publisher, 6)

    asyncio.run(scenario())


def test_regions_whose_figures_changed_go_before_those_whose_rank_alone_moved() -> None:
    sim = Simulation(5).run(150)
    waves: list[list[ev.RegionAggregate]] = []

    async def send(snapshots: Sequence[ev.RegionAggregate]) -> None:
        waves.append(list(snapshots))

    async def scenario() -> None:
        projection = await started(MemoryStore(), 1)
        await projection.apply({0: [(offset, event) for offset, (_, event) in enumerate(sim.events)]})
        await written(projection)
        publisher = SnapshotPublisher(
            projection, CoverageTargets(POLICY, NoTargets()), send, clock=lambda: sim.now, rerank_every=0
        )
        await publisher.flush()
        await projection.apply({0: _boost(sim, len(sim.events), "33.74", "33.74.02", 400)})
        await written(projection)
        await publisher.flush()

    asyncio.run(scenario())
    before = {s.region_code: s for wave in waves[:3] for s in wave}
    changed, reranked, kecamatan = waves[3], waves[4], waves[5]
    assert "33.74" in {s.region_code for s in changed}
    assert [s.region_code for s in kecamatan] == ["33.74.02"]
    assert reranked
    assert not {s.region_code for s in reranked} & {s.region_code for s in changed}
    for snapshot in reranked:
        previous = before[snapshot.region_code]
        assert snapshot.rank_national != previous.rank_national
        assert snapshot.model_dump(exclude={"as_of", "source_offsets", "rank_national", "rank_in_province"}) == (
            previous.model_dump(exclude={"as_of", "source_offsets", "rank_national", "rank_in_province"})
        )


def _boost(sim: Simulation, start: int, region: str, kecamatan: str, workers: int) -> list[tuple[int, Any]]:
    """Enough new workers in one regency/city to lift it past others in the barometer, from offset `start`."""
    base = {"partner_id": "p", "request_event_id": "q", "version": 1}
    return [
        (
            offset,
            _event(
                ev.ParticipantRegistered,
                ev.Registered(
                    request_id=f"boost-{offset}",
                    participant=make_participant(f"boost-{offset}", region=region, kecamatan=kecamatan),
                    **base,
                ),
                sim.now,
            ),
        )
        for offset in range(start, start + workers)
    ]


def test_a_rank_alone_goes_out_every_rerank_interval_and_every_regency_ends_with_its_current_rank() -> None:
    sim = Simulation(5).run(150)
    waves: list[list[ev.RegionAggregate]] = []
    clock = {"now": sim.now}

    async def send(snapshots: Sequence[ev.RegionAggregate]) -> None:
        waves.append(list(snapshots))

    async def scenario() -> None:
        projection = await started(MemoryStore(), 1)
        await projection.apply({0: [(offset, event) for offset, (_, event) in enumerate(sim.events)]})
        await written(projection)
        publisher = SnapshotPublisher(
            projection, CoverageTargets(POLICY, NoTargets()), send, clock=lambda: clock["now"], rerank_every=10
        )
        await publisher.flush()
        # Semarang climbs, then Surakarta: each goes out at once with its new figures and rank; the regencies
        # they passed keep their published rank until the re-rank interval is over.
        offset = len(sim.events)
        for seconds, (region, kecamatan) in enumerate([("33.74", "33.74.02"), ("33.72", "33.72.01")], start=1):
            await projection.apply({0: _boost(sim, offset, region, kecamatan, 400)})
            offset += 400
            await written(projection)
            clock["now"] = sim.now + timedelta(seconds=seconds)
            await publisher.flush()
            changed, reranked = waves[-3], waves[-2]
            assert region in {s.region_code for s in changed}
            assert reranked == []
        clock["now"] = sim.now + timedelta(seconds=11)
        await publisher.flush()
        changed, reranked = waves[-3], waves[-2]
        assert changed == []
        assert reranked
        assert "33.72" not in {s.region_code for s in reranked}  # out already, with its rank of now
        await publisher.flush()  # nothing moved since
        assert waves[-3:] == [[], [], []]

        latest = {s.region_code: s for wave in waves for s in wave}
        figures = Figures(projection.model, POLICY, clock["now"])
        for code, rank in figures.ranks.items():
            if code in latest:
                assert (latest[code].rank_national, latest[code].rank_in_province) == (
                    rank.rank_national,
                    rank.rank_in_province,
                ), code

    asyncio.run(scenario())


def test_each_round_follows_the_write_that_woke_it_before_the_next_write_starts() -> None:
    """Writes every interval taking half of it: each round must publish its write's figures before the next
    write starts. Counted from the last round's start instead, rounds locked onto the writer's timer and
    started just after the next write had, so every write's figures waited out the rest of the interval."""
    interval, write_seconds, writes = 0.3, 0.15, 8
    timeline: list[str] = []

    class Rounds(SnapshotPublisher):
        async def flush(self) -> int:
            timeline.append("round")
            return 0

    class Idle:
        async def refresh(self) -> None:
            return None

    async def scenario() -> None:
        publisher = Rounds(Idle(), Idle(), send=None)  # type: ignore[arg-type]
        rounds = asyncio.create_task(publisher.run(interval, targets_every=3600))
        start = asyncio.get_running_loop().time()
        for write in range(writes):
            await asyncio.sleep(max(0.0, start + write * interval - asyncio.get_running_loop().time()))
            timeline.append("write")
            await asyncio.sleep(write_seconds)
            timeline.append("woken")
            publisher.wake()
        await asyncio.sleep(interval)
        rounds.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rounds

    asyncio.run(scenario())
    woken = [i for i, step in enumerate(timeline) if step == "woken"]
    for position in woken[1:]:  # the first round may start on its own timer, before any write
        following = timeline[position + 1 : position + 2]
        assert following == ["round"], (position, timeline)
