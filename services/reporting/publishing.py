"""Publishing snapshots to the compacted region-aggregates topic: on change, coalesced.

Every interval the publisher takes the regions whose counters or budgets changed since the last round (plus,
every re-rank interval, regencies/cities whose rank alone moved, and everything when the WIB date or the
coverage targets changed), builds their snapshots and publishes those that differ from what it published
last. A region changed by 10,000 events in one second is therefore published once. Snapshots are keyed by
region code, so compaction keeps the latest.
A round builds and publishes the nation, provinces and regencies/cities first, then the kecamatan. While the
consumer catches up on a backlog, the kecamatan go out less often (`catch_up_kecamatan_every`).

A round starts when the writer has written the state (`wake`, every commit interval), but never sooner than an
interval after the write that started the last round: the figures are published right after they became
durable instead of waiting for a timer of their own (up to an interval more), and rounds follow the writes, at
most one per interval. Without a wake (no writer, or a write that takes long) a round starts two intervals
after the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from services.reporting.domain.counters import business_date, level_of
from services.reporting.domain.figures import Budgets, Figures, Fingerprint
from shared.events import RegionAggregate, RegionAggregateUpdated
from shared.messaging import Keyed, send_all

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence
    from datetime import date

    from aiokafka import AIOKafkaProducer

    from services.reporting.budgets import BudgetLedger
    from services.reporting.domain.coverage import CoveragePolicy, TargetStore
    from services.reporting.projection import Projection

log = structlog.get_logger("reporting")

SOURCE = "lindungi/reporting"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CoverageTargets:
    """The coverage policy in force; replaced when an operator has loaded other official figures."""

    policy: CoveragePolicy
    store: TargetStore

    async def refresh(self) -> bool:
        targets = await self.store.load_targets()
        if targets == dict(self.policy.targets):
            return False
        self.policy = replace(self.policy, targets=targets)
        log.info("coverage targets loaded", regions=len(targets))
        return True


def snapshot_sender(producer: AIOKafkaProducer, topic: str) -> Callable[[Sequence[RegionAggregate]], Awaitable[None]]:
    """Snapshots go out through an aiokafka producer of their own (`send_all`), not FastStream's `publish`: a
    round publishes hundreds of them. Every snapshot takes this one path, so per-region order holds."""

    async def send(snapshots: Sequence[RegionAggregate]) -> None:
        await send_all(
            producer,
            (
                Keyed.of(topic, s.region_code, RegionAggregateUpdated(source=SOURCE, subject=s.region_code, data=s))
                for s in snapshots
            ),
        )

    return send


class SnapshotPublisher:
    def __init__(  # noqa: PLR0913 - the options after `*` are keyword-only with defaults
        self,
        projection: Projection,
        coverage: CoverageTargets,
        send: Callable[[Sequence[RegionAggregate]], Awaitable[None]],
        *,
        suppress_below: int = 0,
        clock: Callable[[], datetime] = utc_now,
        budgets: BudgetLedger | None = None,
        rerank_every: float = 10.0,
        catching_up: Callable[[], bool] = lambda: False,
        catch_up_kecamatan_every: float = 5.0,
    ) -> None:
        """`catching_up`: whether the consumer is behind (its last batch came full); then the kecamatan wave
        goes out at most every `catch_up_kecamatan_every` seconds."""
        self.projection = projection
        self.budgets = budgets
        self.coverage = coverage
        self.send = send
        self.suppress_below = suppress_below
        self.clock = clock
        self.rerank_every = rerank_every
        self.catching_up = catching_up
        self.catch_up_kecamatan_every = catch_up_kecamatan_every
        self.published_count = 0
        self.last_reranked = 0  # of the last round's snapshots, those of a regency/city whose rank alone moved
        self._published: dict[str, Fingerprint] = {}  # region -> the fingerprint of what it last published
        self._ranked: dict[str, RegionAggregate] = {}  # regencies/cities: what each last published (`reranked`)
        self._ranks: dict[str, tuple[int, int]] = {}  # regency/city -> the ranks it last published
        self._reranked_at: datetime | None = None
        self._kecamatan_at: datetime | None = None  # when the last kecamatan wave went out
        self._held: set[str] = set()  # kecamatan held back while catching up: they go with the next wave
        self._day: date | None = None
        self._policy: CoveragePolicy | None = None
        self._leading = False
        self._written = asyncio.Event()
        self._written_at = 0.0  # monotonic time of the last wake

    def wake(self) -> None:
        """The state was written: publish now, or as soon as the interval since the last round allows."""
        self._written_at = time.monotonic()
        self._written.set()

    async def flush(self) -> int:
        """Publish every region whose figures differ from what was last published; returns how many."""
        model = self.projection.model
        book = self.budgets.book if self.budgets is not None else None
        if not self.projection.is_leader:
            model.take_dirty()
            if book is not None:
                book.take_dirty()
            self._held.clear()
            self._leading = False
            return 0
        now = self.clock()
        policy = self.coverage.policy
        budgets = Budgets(book, self.budgets.cost) if self.budgets is not None and book is not None else None
        figures = Figures(model, policy, now, self.suppress_below, budgets)
        day = business_date(now)
        with_data = model.codes() | figures.with_budgets()
        candidates = model.take_dirty() | (book.take_dirty() if book is not None else set())
        if not self._leading:
            self._published.clear()  # another instance may have published meanwhile
            self._ranked.clear()
        everything = not self._leading or day != self._day or policy is not self._policy
        if everything:
            candidates |= with_data  # "today" moved on, or denominators changed: every figure may have
        # Ranks alone are republished every `rerank_every` seconds, not every round: one regency's coverage
        # moving re-ranks every regency between its old and new place, so at 200 requests/s half of a round's
        # snapshots (about 300 of 650) were regencies/cities whose figures had not changed, and the rounds kept
        # reporting's event loop busy for all but 3 s of a minute, while folding and writing waited. A region
        # whose figures changed still goes out every round, with its rank of the moment.
        rerank = (
            everything or self._reranked_at is None or (now - self._reranked_at).total_seconds() >= self.rerank_every
        )
        ranks = {code: (r.rank_national, r.rank_in_province) for code, r in figures.ranks.items() if code in with_data}
        if rerank:
            candidates |= {code for code, rank in ranks.items() if self._ranks.get(code) != rank}
        # The nation, provinces and regencies/cities first, then the kecamatan: the figures dashboards and the
        # barometer watch go out before the most numerous ones are even built (under a backlog two thirds of a
        # round's snapshots are kecamatan), and the event loop gets to fold and write in between. Among the
        # coarser regions, those whose figures changed go before those whose rank alone moved, so that a
        # re-ranking round does not hold back the changed figures, what the round is for.
        coarse = sorted(code for code in candidates if level_of(code) != "kecamatan")
        kecamatan = self._kecamatan_wave(now, candidates.difference(coarse))
        changed, reranked = self._due(figures, coarse)
        if not rerank:
            reranked = []  # their published rank stays in `_ranks`, so the next re-ranking round takes them
        self.last_reranked = len(reranked)
        waves: list[Callable[[], list[tuple[RegionAggregate, Fingerprint]]]] = [
            lambda: [(figures.region(code), fingerprint) for code, fingerprint in changed],
            lambda: [(figures.reranked(previous), fingerprint) for previous, fingerprint in reranked],
            lambda: [
                (figures.region(code), fingerprint) for code, fingerprint in self._due(figures, sorted(kecamatan))[0]
            ],
        ]
        published = 0
        for wave in waves:
            built = wave()
            try:
                await self.send([snapshot for snapshot, _ in built])
            except BaseException:
                model.dirty |= candidates | kecamatan  # again next round (what was published meanwhile is recognised)
                raise
            self._published.update((s.region_code, fingerprint) for s, fingerprint in built)
            self._ranked.update((s.region_code, s) for s, fingerprint in built if fingerprint.rank is not None)
            published += len(built)
        if rerank:
            self._ranks, self._reranked_at = ranks, now  # every rank that moved went out (or was already out)
        else:
            self._ranks.update((code, ranks[code]) for code, _ in changed if code in ranks)
        self._day, self._policy, self._leading = day, policy, True
        self.published_count += published
        return published

    def _kecamatan_wave(self, now: datetime, changed: set[str]) -> set[str]:
        """The kecamatan this round takes: those changed, with those held back; none while catching up until
        `catch_up_kecamatan_every` has passed since the last wave.

        Catching up on a backlog, nearly every kecamatan changes between two rounds, and building and sending
        their snapshots (about 3,000 a round) took 0.47 s of CPU per round against 1.2 s for folding the
        second's 14,000 events, in figures superseded a round later (in the service the rounds stretch out
        instead, sharing the event loop; spacing them gave 5.6% more events/s, bench/template.md). The
        coarser regions still go every round; once a batch comes in short of full, the next round takes all.
        """
        wave = self._held | changed
        if (
            self.catching_up()
            and self._kecamatan_at is not None
            and (now - self._kecamatan_at).total_seconds() < self.catch_up_kecamatan_every
        ):
            self._held = wave
            return set()
        self._held, self._kecamatan_at = set(), now
        return wave

    def _due(
        self, figures: Figures, codes: Iterable[str]
    ) -> tuple[list[tuple[str, Fingerprint]], list[tuple[RegionAggregate, Fingerprint]]]:
        """The regions whose figures differ from what was last published, and apart from them those whose rank
        alone moved (with the snapshot each last published, which `Figures.reranked` copies)."""
        changed: list[tuple[str, Fingerprint]] = []
        reranked: list[tuple[RegionAggregate, Fingerprint]] = []
        for code in codes:
            fingerprint, published = figures.fingerprint(code), self._published.get(code)
            if published == fingerprint:
                continue
            previous = self._ranked.get(code)
            if previous is not None and published is not None and published.figures == fingerprint.figures:
                reranked.append((previous, fingerprint))
            else:
                changed.append((code, fingerprint))
        return changed, reranked

    async def run(self, interval: float, targets_every: float) -> None:
        """Until cancelled: refresh targets now and then, re-read other instances' partitions, publish."""
        targets_read = last_trigger = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._written.wait(), max(0.0, last_trigger + 2 * interval - time.monotonic()))
            trigger = self._written_at if self._written.is_set() else time.monotonic()
            # Coalescing, counted from the write that started the last round, not from the round's start: the
            # writes come every interval too, so counted from the round a round started a write's duration after
            # its write stayed that late for good (each round one interval after the last), and every later
            # write's figures waited out the rest of the interval before going out: 0.65 s of every round at
            # 200 requests/s, the round starting 10 ms after the next write had started instead of as the last
            # one ended. Counted from the write, a round follows its write unless the write before was slower.
            await asyncio.sleep(max(0.0, last_trigger + interval - time.monotonic()))
            self._written.clear()
            last_trigger, last_round = trigger, time.monotonic()
            try:
                if last_round - targets_read >= targets_every:
                    await self.coverage.refresh()
                    targets_read = time.monotonic()
                await self.projection.refresh()
                if self.budgets is not None:
                    await self.budgets.refresh()
                published = await self.flush()
            except Exception:
                log.exception("publishing snapshots failed; trying again next round")
                continue
            if published:
                log.debug(
                    "snapshots published",
                    regions=published,
                    rank_only=self.last_reranked,
                    seconds=round(time.monotonic() - last_round, 3),
                )
