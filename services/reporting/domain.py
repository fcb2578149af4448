"""Reporting's fold: outcome events become additive counters per region, sharded by source partition.

Words used here:
- a *leaf* is where an outcome is counted: the participant's kecamatan when it is known and lies in the
  responsible regency/city, otherwise the regency/city itself; a rejection's region, otherwise the nation.
  A region's figures are the sum of every leaf at or below it (`lineage`), so a parent always equals the sum
  of its children plus what is counted at its own level only.
- *counters* are a flat, sparse mapping `name -> int` (names built by the `*_key` helpers); zero is absent.
- a *chunk* is one province's leaves (or the nation's own leaf) within one source partition: the unit that is
  written atomically together with the offset it reflects (`applied_offset`).
- a partition's *cursor* is the next offset to read and the window of recent event ids (the dedupe window).

Exactly once: a record at offset `o` changes chunk `c` only if `o >= c.applied_offset`, and every chunk
write sets `applied_offset` to the partition's next offset in the same document update. The cursor is written
last. After a crash between chunk writes the replay starts at the cursor and skips, chunk by chunk, what is
already there. The fold is deterministic (same records, same order -> same state, whatever the batch
boundaries), so a replay and a rebuild from the start of the topic give the same figures.

Batches are folded in memory and written together every commit interval (`Pending`): the number of writes
follows the interval, not the event rate.

Pure: no I/O. The storage behind `PartitionStore` is in store.py.
"""

from __future__ import annotations

import hashlib
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, get_args
from zoneinfo import ZoneInfo

from shared.events import (
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantStatus,
    ParticipantTerminated,
    ParticipantUpdated,
    RequestRejected,
)
from shared.regions import NATIONAL_CODE, Level

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from shared.events import Outcome

WIB = ZoneInfo("Asia/Jakarta")  # "today" and "this month" are dates in Indonesia's western time zone

Counters = dict[str, int]
Flow = Literal["enrollments", "terminations", "reactivations"]
FLOWS: tuple[Flow, ...] = get_args(Flow)

ACTIVE = "active"
REJECTIONS = "rejections"
# Breakdowns of active participants; the value is the enum's value (`segment/PU`, `age/20-29`).
SEGMENT, CATEGORY, PROGRAM, FUNDING, SEX, AGE = "segment", "category", "program", "funding", "sex", "age"
CONTRIBUTION = "contrib"  # `contrib/<funding source>/<payer>`: Rupiah per month
CONTRIBUTORS = "contrib_n"  # `contrib_n/<funding source>/<payer>`: participants behind that amount
REJECTION_REASON, REJECTION_PARTNER = "reject_reason", "reject_partner"


def flow_key(flow: Flow, period: str = "total") -> str:
    """`flow/enrollments/total`, `flow/enrollments/day/2026-03-05`, `flow/enrollments/month/2026-03`."""
    return f"flow/{flow}/{period}"


def day_period(day: date) -> str:
    return f"day/{day.isoformat()}"


def month_period(day: date) -> str:
    return f"month/{day.year:04d}-{day.month:02d}"


def contribution_key(funding_source: str, payer: str, *, contributors: bool = False) -> str:
    return f"{CONTRIBUTORS if contributors else CONTRIBUTION}/{funding_source}/{payer}"


# --- Region codes: the roll-up follows the code's structure, so a code missing from the reference data still
# --- adds up into its parents (an old code after a region split, for example).


def parent_of(code: str) -> str | None:
    if code == NATIONAL_CODE:
        return None
    return code.rsplit(".", 1)[0] if "." in code else NATIONAL_CODE


def lineage(code: str) -> tuple[str, ...]:
    """The region and everything it rolls up into: `32.71.01` -> (32.71.01, 32.71, 32, ID)."""
    chain = [code]
    while (parent := parent_of(chain[-1])) is not None:
        chain.append(parent)
    return tuple(chain)


def level_of(code: str) -> Level:
    if code == NATIONAL_CODE:
        return "national"
    return ("province", "regency/city", "kecamatan")[min(code.count("."), 2)]


def chunk_of(leaf: str) -> str:
    """The chunk holding a leaf: its province, or the nation for what is counted at national level only."""
    return NATIONAL_CODE if leaf == NATIONAL_CODE else leaf[:2]


def leaf_of(participant: Participant) -> str:
    """Kecamatan when known and inside the responsible regency/city; otherwise the regency/city itself.

    A worker may live in a kecamatan of another regency than the one responsible for them; counting them there
    would move them out of the responsible region's figures, so they are counted at regency/city level.
    """
    kecamatan, region = participant.kecamatan_code, participant.region_code
    if kecamatan is not None and level_of(region) == "regency/city" and kecamatan.startswith(region + "."):
        return kecamatan
    return region


def business_date(moment: datetime) -> date:
    """The WIB date of an instant; a time without an offset is taken as UTC so every machine agrees."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(WIB).date()


# --- What one event changes --------------------------------------------------------------------------------


def active_counters(participant: Participant) -> Counters:
    """What one participation adds to its leaf while active: nothing once terminated."""
    if participant.status is not ParticipantStatus.ACTIVE:
        return {}
    counters: Counters = {
        ACTIVE: 1,
        f"{SEGMENT}/{participant.segment}": 1,
        f"{CATEGORY}/{participant.category}": 1,
        f"{FUNDING}/{participant.funding_source}": 1,
        f"{SEX}/{participant.sex}": 1,
        f"{AGE}/{participant.age_band}": 1,
    }
    for program in set(participant.programs):
        counters[f"{PROGRAM}/{program}"] = 1
    for payer, amount in participant.contributions.by_payer.items():
        if amount > 0:
            counters[contribution_key(participant.funding_source, payer)] = amount
            counters[contribution_key(participant.funding_source, payer, contributors=True)] = 1
    return counters


def add_into(target: Counters, delta: Mapping[str, int], sign: int = 1) -> None:
    """target += sign * delta, keeping the mapping sparse (a counter that reaches zero disappears).

    A name new to `target` is interned: the state holds counters for every leaf of every partition (about two
    million at a million participants), and without it each would keep its own copy of a name built per event,
    two thirds of the state's memory (measured in the backfill benchmark).
    """
    for key, value in delta.items():
        before = target.get(key)
        total = (before or 0) + sign * value
        if not total:
            target.pop(key, None)
        elif before is None:
            target[sys.intern(key)] = total
        else:
            target[key] = total


def _moved(previous: Participant, current: Participant) -> dict[str, Counters]:
    """Take the participation out as it was, put it back as it is (maybe elsewhere, maybe inactive)."""
    changes: dict[str, Counters] = {}
    add_into(changes.setdefault(leaf_of(previous), {}), active_counters(previous), -1)
    add_into(changes.setdefault(leaf_of(current), {}), active_counters(current))
    return changes


def effects(event: Outcome) -> dict[str, Counters]:
    """The additive change an outcome makes at each leaf. Leaves left unchanged are left out."""
    changes: dict[str, Counters]
    flow: tuple[Flow, Participant] | None = None
    match event:
        case ParticipantRegistered(data=data):
            changes = {leaf_of(data.participant): active_counters(data.participant)}
            flow = ("enrollments", data.participant)
        case ParticipantUpdated(data=data):
            changes = _moved(data.previous, data.participant)
        case ParticipantTerminated(data=data):
            changes, flow = _moved(data.previous, data.participant), ("terminations", data.participant)
        case ParticipantReactivated(data=data):
            changes, flow = _moved(data.previous, data.participant), ("reactivations", data.participant)
        case RequestRejected(data=data):
            counters: Counters = {REJECTIONS: 1, f"{REJECTION_PARTNER}/{data.partner_id}": 1}
            for code in {reason.code for reason in data.reasons}:
                counters[f"{REJECTION_REASON}/{code}"] = 1
            changes = {data.region_code or NATIONAL_CODE: counters}
    if flow is not None:
        # A flow is counted where the participation is after the change, on the event's WIB date.
        kind, participant = flow
        day = business_date(event.time)
        add_into(
            changes.setdefault(leaf_of(participant), {}),
            {flow_key(kind): 1, flow_key(kind, day_period(day)): 1, flow_key(kind, month_period(day)): 1},
        )
    return {leaf: delta for leaf, delta in changes.items() if delta}


def expired_periods(counters: Mapping[str, int]) -> list[str]:
    """Day and month counters that can no longer be "today" or "this month".

    Per leaf the window keeps the latest day seen and the one before it (for clocks slightly ahead around
    midnight), and the latest month and the one before it. Older keys go, so the state does not grow with
    time. The rule depends only on which keys are present, so pruning once per batch equals pruning after
    each event.
    """
    days: list[str] = []
    months: list[str] = []
    for key in counters:
        if key.startswith("flow/"):
            period = key.split("/", 2)[2]
            if period.startswith("day/"):
                days.append(period[4:])
            elif period.startswith("month/"):
                months.append(period[6:])
    expired: list[str] = []
    if days:
        keep_from = (date.fromisoformat(max(days)) - timedelta(days=1)).isoformat()
        expired += [f"flow/{f}/day/{d}" for f in FLOWS for d in set(days) if d < keep_from]
    if months:
        year, month = (int(part) for part in max(months).split("-"))
        keep_month = f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"
        expired += [f"flow/{f}/month/{m}" for f in FLOWS for m in set(months) if m < keep_month]
    return [key for key in expired if key in counters]


# --- The dedupe window -------------------------------------------------------------------------------------


DIGEST_SIZE = 8


def event_digest(event_id: str) -> bytes:
    """8 bytes of BLAKE2b for an event id (ids are up to 128 characters): with 10,000 ids remembered, the
    chance that a new event is taken for a duplicate is about 5 in 10^16."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_SIZE).digest()


class RecentEvents:
    """The last `capacity` event ids applied on one partition, oldest first.

    Registration may publish an outcome twice with the same event id (a crash between publishing and recording
    it); the copy follows the original closely on the same partition, because the key is the same. The window
    is bounded by `capacity`, not by the number of participants: a copy further behind would be counted twice.
    """

    __slots__ = ("_members", "_order", "capacity")

    def __init__(self, capacity: int, digests: Iterable[bytes] = ()) -> None:
        self.capacity = capacity
        self._order: deque[bytes] = deque()
        self._members: set[bytes] = set()
        for digest in digests:
            if digest not in self._members:
                self.add(digest)

    def __contains__(self, digest: object) -> bool:
        return digest in self._members

    def __len__(self) -> int:
        return len(self._order)

    def add(self, digest: bytes) -> None:
        self._order.append(digest)
        self._members.add(digest)
        if len(self._order) > self.capacity:
            self._members.discard(self._order.popleft())

    def copy(self) -> RecentEvents:
        clone = RecentEvents(self.capacity)
        clone._order = self._order.copy()
        clone._members = self._members.copy()
        return clone

    def to_bytes(self) -> bytes:
        return b"".join(self._order)

    @classmethod
    def from_bytes(cls, capacity: int, packed: bytes) -> RecentEvents:
        return cls(capacity, (packed[i : i + DIGEST_SIZE] for i in range(0, len(packed), DIGEST_SIZE)))


# --- A partition's state and the fold ----------------------------------------------------------------------


@dataclass
class Chunk:
    applied_offset: int  # the partition's next offset when this chunk was last changed
    leaves: dict[str, Counters] = field(default_factory=dict)


@dataclass
class PartitionState:
    """One source partition's share of the aggregates (its chunks) and its cursor, in memory."""

    topic: str
    partition: int
    recent: RecentEvents
    next_offset: int = 0
    stored: bool = False  # whether a cursor was stored when this state was loaded
    chunks: dict[str, Chunk] = field(default_factory=dict)

    def leaves(self) -> Iterator[tuple[str, Counters]]:
        for chunk in self.chunks.values():
            yield from chunk.leaves.items()

    def counters(self, leaf: str) -> Counters:
        chunk = self.chunks.get(chunk_of(leaf))
        return chunk.leaves.get(leaf, {}) if chunk is not None else {}

    def apply(self, folded: Folded) -> None:
        for leaf, counters in folded.leaves.items():
            chunk = self.chunks.setdefault(chunk_of(leaf), Chunk(folded.next_offset))
            chunk.applied_offset = folded.next_offset
            if counters:
                chunk.leaves[leaf] = counters
            else:
                chunk.leaves.pop(leaf, None)
        self.next_offset = folded.next_offset
        self.recent = folded.recent


@dataclass(frozen=True)
class Folded:
    """What one batch of records does to one partition."""

    next_offset: int
    recent: RecentEvents
    leaves: dict[str, Counters]  # the new counters of every touched leaf; empty = the leaf is gone
    deltas: dict[str, Counters]  # the net change per leaf, for the read model
    applied: int
    duplicates: int


def fold(state: PartitionState, records: Iterable[tuple[int, Outcome | None]]) -> Folded | None:
    """Fold one partition's records (offset order; None = a record that was dead-lettered).

    Records before the cursor were applied already. Returns None when nothing new was read.
    """
    recent = state.recent.copy()
    working: dict[str, Counters] = {}
    last: int | None = None
    applied = duplicates = 0
    for offset, event in records:
        if offset < state.next_offset:
            continue
        last = offset
        if event is None:
            continue
        if (digest := event_digest(event.id)) in recent:
            duplicates += 1
            continue
        recent.add(digest)
        applied += 1
        _apply(state, offset, effects(event), working)
    if last is None:
        return None
    # The net change per leaf is taken once per batch, as new counters minus stored ones, rather than summed
    # event by event alongside them (a second dictionary update per event was a tenth of the fold).
    deltas: dict[str, Counters] = {}
    for leaf, counters in working.items():
        for key in expired_periods(counters):
            del counters[key]
        if delta := _difference(counters, state.counters(leaf)):
            deltas[leaf] = delta
    return Folded(
        next_offset=last + 1,
        recent=recent,
        leaves=working,
        deltas=deltas,
        applied=applied,
        duplicates=duplicates,
    )


def _apply(state: PartitionState, offset: int, changes: Mapping[str, Counters], working: dict[str, Counters]) -> None:
    for leaf, delta in changes.items():
        chunk = state.chunks.get(chunk_of(leaf))
        if chunk is not None and offset < chunk.applied_offset:
            continue  # this chunk was written by a run that stopped before writing the cursor
        counters = working.get(leaf)
        if counters is None:
            counters = working[leaf] = dict(chunk.leaves.get(leaf, {}) if chunk else {})
        add_into(counters, delta)


def _difference(after: Mapping[str, int], before: Mapping[str, int]) -> Counters:
    difference = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    difference.update((key, -n) for key, n in before.items() if key not in after)
    return difference


# --- Writing: several batches are folded in memory, then written together ---------------------------------


@dataclass(frozen=True)
class ChunkWrite:
    chunk: str
    stored: bool  # whether a document for this chunk is known to exist
    accepted: tuple[int, ...]  # applied_offset values the stored document may have for this write to apply
    applied_offset: int
    leaves: dict[str, Counters]  # the whole counters of every changed leaf; empty = the leaf is gone


@dataclass(frozen=True)
class PartitionChange:
    """A durable write of one partition: its changed chunks first, then its cursor."""

    topic: str
    partition: int
    cursor_stored: bool
    cursor_accepted: tuple[int, ...]  # next_offset values the stored cursor may have for this write to apply
    next_offset: int
    recent: RecentEvents
    writes: tuple[ChunkWrite, ...]


@dataclass
class Pending:
    """What was folded into a partition in memory since it was last written.

    A write is accepted by a document that is as it was read (`cursor`, `chunks`) or as a failed attempt of
    ours left it (`attempted`): writes are absolute and the fold is deterministic, so a document at offset T
    holds the same counters whoever wrote it, and writing again after a half-done attempt is harmless.
    """

    cursor: int | None  # the stored cursor's next_offset; None when none is stored
    chunks: dict[str, int]  # applied_offset of every stored chunk
    attempted: list[int] = field(default_factory=list)  # next offsets of writes that failed part-way
    leaves: set[str] = field(default_factory=set)
    deltas: dict[str, Counters] = field(default_factory=dict)
    moved: bool = False

    @classmethod
    def since(cls, state: PartitionState) -> Pending:
        return cls(
            state.next_offset if state.stored else None,
            {key: chunk.applied_offset for key, chunk in state.chunks.items()},
        )

    def add(self, folded: Folded) -> None:
        self.leaves.update(folded.leaves)
        for leaf, delta in folded.deltas.items():
            add_into(self.deltas.setdefault(leaf, {}), delta)
        self.moved = True

    def after(self, change: PartitionChange) -> Pending:
        """What the store holds once `change` is written: folding goes on while it is being written."""
        return Pending(change.next_offset, {**self.chunks, **{w.chunk: w.applied_offset for w in change.writes}})

    def failed(self, change: PartitionChange, since: Pending) -> Pending:
        """`change` did not (entirely) land: pending again, with what was folded while it was being written."""
        merged = Pending(self.cursor, dict(self.chunks), [*self.attempted, change.next_offset], moved=True)
        merged.leaves = self.leaves | since.leaves
        for deltas in (self.deltas, since.deltas):
            for leaf, delta in deltas.items():
                add_into(merged.deltas.setdefault(leaf, {}), delta)
        return merged

    def change(self, state: PartitionState) -> PartitionChange | None:
        if not self.moved:
            return None
        by_chunk: dict[str, dict[str, Counters]] = {}
        for leaf in sorted(self.leaves):
            by_chunk.setdefault(chunk_of(leaf), {})[leaf] = state.counters(leaf)
        writes = tuple(
            ChunkWrite(
                chunk=key,
                stored=key in self.chunks,
                accepted=(*([self.chunks[key]] if key in self.chunks else []), *self.attempted),
                applied_offset=state.next_offset,
                leaves=leaves,
            )
            for key, leaves in sorted(by_chunk.items())
        )
        return PartitionChange(
            topic=state.topic,
            partition=state.partition,
            cursor_stored=self.cursor is not None,
            cursor_accepted=(*([self.cursor] if self.cursor is not None else []), *self.attempted),
            next_offset=state.next_offset,
            recent=state.recent,
            writes=writes,
        )


class ConcurrentWriteError(Exception):
    """Another consumer wrote this partition's state since it was read: the partition moved in a rebalance."""


class PartitionStore(Protocol):
    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState: ...

    async def commit(self, change: PartitionChange) -> None:
        """Chunk writes, then the cursor, each conditional on what was read, else ConcurrentWriteError."""
        ...

    async def cursors(self, topic: str) -> dict[int, int]:
        """partition -> next offset, for every partition with a stored cursor."""
        ...
