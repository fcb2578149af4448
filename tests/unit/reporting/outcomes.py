"""Outcome streams for reporting tests, and an independent computation of the figures they should produce.

The simulation keeps every participation's current state and emits the events registration would (with the
`previous` participation); the reference computes figures from the final states and the list of events,
without the service's delta arithmetic, chunks or windows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared import events as ev

WIB = ZoneInfo("Asia/Jakarta")
PARTNERS = ("bogor-hr", "jabar.dinsos", "semarang$hr%2E")  # `.`, `$` and `%` exercise the key encoding
REASONS = ("NIK_LENGTH", "REGION_UNKNOWN", "WAGE_MISSING", "odd.code")
# (region, kecamatan choices): None = unknown kecamatan; a kecamatan of another regency is counted at regency.
REGIONS: dict[str, tuple[str | None, ...]] = {
    "32.71": ("32.71.01", "32.71.02", "32.71.03", None, "32.73.01"),
    "32.73": ("32.73.01", "32.73.02", None),
    "32.01": ("32.01.01", "32.01.04"),
    "33.74": ("33.74.01", None),
}


def make_participant(  # noqa: PLR0913 - every field of a participation, with test defaults
    pid: str,
    *,
    region: str = "32.71",
    kecamatan: str | None = "32.71.01",
    status: ev.ParticipantStatus = ev.ParticipantStatus.ACTIVE,
    segment: ev.Segment = ev.Segment.BPU,
    category: ev.Category = ev.Category.VULNERABLE,
    programs: tuple[ev.Program, ...] = (ev.Program.JKK, ev.Program.JKM),
    funding: ev.FundingSource = ev.FundingSource.APBD,
    by_payer: dict[ev.Payer, int] | None = None,
    sex: ev.Sex = ev.Sex.FEMALE,
    age: ev.AgeBand = ev.AgeBand.FROM_30,
) -> ev.Participant:
    payer = by_payer if by_payer is not None else {ev.Payer.FUNDER: 16_800}
    return ev.Participant(
        participant_id=pid,
        nik_hash=f"hash-{pid}",
        nik_masked="3271**********01",
        status=status,
        region_code=region,
        province_code=region[:2],
        kecamatan_code=kecamatan,
        segment=segment,
        category=category,
        programs=list(programs),
        funding_source=funding,
        contributions=ev.Contributions(
            as_of=date(2026, 1, 1),
            by_program={programs[0]: sum(payer.values())},
            by_payer=payer,
            total=sum(payer.values()),
        ),
        sex=sex,
        age_band=age,
        coverage_start=date(2026, 1, 1),
    )


def _base(pid: str, version: int) -> dict[str, Any]:
    return {
        "request_id": f"r-{pid}-{version}",
        "partner_id": "bogor-hr",
        "request_event_id": f"q-{pid}-{version}",
    }


@dataclass
class Simulation:
    """A random but reproducible stream of outcomes over a small population."""

    seed: int
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    participants: dict[str, ev.Participant] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    events: list[tuple[str, ev.CloudEvent[Any]]] = field(default_factory=list)  # (key, event)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.active: list[str] = []
        self.terminated: list[str] = []

    def _time(self) -> datetime:
        # Mostly now; some yesterday, last month and last year, so today/this month/total differ.
        ago = self.rng.choice([timedelta(0), timedelta(0), timedelta(days=1), timedelta(days=35), timedelta(days=400)])
        return self.now - ago - timedelta(seconds=self.rng.randint(0, 30))

    def _random_participant(self, pid: str, status: ev.ParticipantStatus) -> ev.Participant:
        rng = self.rng
        region = rng.choice(list(REGIONS))
        payers = rng.sample(list(ev.Payer), rng.randint(1, 3))
        return make_participant(
            pid,
            region=region,
            kecamatan=rng.choice(REGIONS[region]),
            status=status,
            segment=rng.choice(list(ev.Segment)),
            category=rng.choice(list(ev.Category)),
            programs=tuple(rng.sample(list(ev.Program), rng.randint(1, 4))),
            funding=rng.choice(list(ev.FundingSource)),
            by_payer={p: rng.choice([0, 6_800, 10_000, 16_800, 250_000]) for p in payers},
            sex=rng.choice(list(ev.Sex)),
            age=rng.choice(list(ev.AgeBand)),
        )

    def _emit(self, key: str, event: ev.CloudEvent[Any]) -> None:
        self.events.append((key, event))

    def step(self) -> None:
        rng = self.rng
        active, terminated = self.active, self.terminated
        roll = rng.random()
        if roll < 0.1:
            self._reject()
        elif roll < 0.45 or not active:
            self._register()
        elif roll < 0.7:
            self._update(rng.choice(active))
        elif roll < 0.85 or not terminated:
            self._terminate(rng.choice(active))
        else:
            self._reactivate(rng.choice(terminated))

    def run(self, steps: int) -> Simulation:
        for _ in range(steps):
            self.step()
        return self

    def _next_version(self, pid: str) -> int:
        self.versions[pid] = self.versions.get(pid, 0) + 1
        return self.versions[pid]

    def _register(self) -> None:
        pid = f"p{len(self.participants):05d}-{self.seed}"
        new = self._random_participant(pid, ev.ParticipantStatus.ACTIVE)
        self.participants[pid] = new
        self.active.append(pid)
        data = ev.Registered(**_base(pid, v := self._next_version(pid)), version=v, participant=new)
        self._emit(
            new.nik_hash,
            ev.ParticipantRegistered(source="lindungi/registration", time=self._time(), data=data),
        )

    def _update(self, pid: str) -> None:
        previous = self.participants[pid]
        moved = self._random_participant(pid, ev.ParticipantStatus.ACTIVE)
        new = previous.model_copy(
            update={
                "programs": moved.programs,
                "contributions": moved.contributions,
                "region_code": moved.region_code if self.rng.random() < 0.3 else previous.region_code,
            }
        )
        new = new.model_copy(
            update={
                "province_code": new.region_code[:2],
                "kecamatan_code": self.rng.choice(REGIONS[new.region_code]),
            }
        )
        self.participants[pid] = new
        data = ev.Updated(**_base(pid, v := self._next_version(pid)), version=v, participant=new, previous=previous)
        self._emit(new.nik_hash, ev.ParticipantUpdated(source="lindungi/registration", time=self._time(), data=data))

    def _terminate(self, pid: str) -> None:
        previous = self.participants[pid]
        new = previous.model_copy(update={"status": ev.ParticipantStatus.TERMINATED})
        self.participants[pid] = new
        self.active.remove(pid)
        self.terminated.append(pid)
        data = ev.Terminated(
            **_base(pid, v := self._next_version(pid)),
            version=v,
            participant=new,
            previous=previous,
            reason=ev.TerminationReason.RESIGNED,
        )
        self._emit(
            new.nik_hash,
            ev.ParticipantTerminated(source="lindungi/registration", time=self._time(), data=data),
        )

    def _reactivate(self, pid: str) -> None:
        previous = self.participants[pid]
        new = previous.model_copy(update={"status": ev.ParticipantStatus.ACTIVE})
        self.participants[pid] = new
        self.terminated.remove(pid)
        self.active.append(pid)
        data = ev.Reactivated(**_base(pid, v := self._next_version(pid)), version=v, participant=new, previous=previous)
        self._emit(
            new.nik_hash,
            ev.ParticipantReactivated(source="lindungi/registration", time=self._time(), data=data),
        )

    def _reject(self) -> None:
        partner = self.rng.choice(PARTNERS)
        region = self.rng.choice([None, *REGIONS, "32.71.02"])
        reasons = [
            ev.RejectionReason(code=code, message_id="ditolak", message_en="rejected")
            for code in self.rng.sample(REASONS, self.rng.randint(1, 2))
        ]
        n = len(self.events)
        data = ev.Rejected(
            request_id=f"x{n}",
            partner_id=partner,
            request_event_id=f"qx{n}",
            reasons=reasons,
            region_code=region,
        )
        self._emit(partner, ev.RequestRejected(source="lindungi/registration", time=self._time(), data=data))


# --- The independent computation -------------------------------------------------------------------------


def _chain(code: str) -> list[str]:
    if code == "ID":
        return ["ID"]
    parts = code.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)] + ["ID"]


def _where(p: ev.Participant) -> str:
    k = p.kecamatan_code
    return k if k is not None and k.split(".")[:2] == p.region_code.split(".") else p.region_code


def _wib(moment: datetime) -> date:
    return moment.astimezone(WIB).date()


def _empty() -> dict[str, Any]:
    flows = {"today": 0, "this_month": 0, "total": 0}
    return {
        "active": 0,
        "enrollments": dict(flows),
        "terminations": dict(flows),
        "reactivations": dict(flows),
        "by_segment": {v.value: 0 for v in ev.Segment},
        "by_category": {v.value: 0 for v in ev.Category},
        "by_program": {v.value: 0 for v in ev.Program},
        "by_funding_source": {v.value: 0 for v in ev.FundingSource},
        "by_sex": {v.value: 0 for v in ev.Sex},
        "by_age_band": {v.value: 0 for v in ev.AgeBand},
        "monthly_contributions_by_payer": {v.value: 0 for v in ev.Payer},
        "monthly_contributions_by_funding_source": {v.value: 0 for v in ev.FundingSource},
        "monthly_contributions_by_funding_source_and_payer": {
            f.value: {p.value: 0 for p in ev.Payer} for f in ev.FundingSource
        },
        "annual_contributions_by_funding_source": {v.value: 0 for v in ev.FundingSource},
        "rejections": 0,
        "rejections_by_reason": {},
        "rejections_by_partner": {},
    }


FIGURE_KEYS = tuple(_empty())


def _count_rejection(f: dict[str, Any], data: ev.Rejected) -> None:
    f["rejections"] += 1
    f["rejections_by_partner"][data.partner_id] = f["rejections_by_partner"].get(data.partner_id, 0) + 1
    for code in {r.code for r in data.reasons}:
        f["rejections_by_reason"][code] = f["rejections_by_reason"].get(code, 0) + 1


def _count_active(f: dict[str, Any], p: ev.Participant) -> None:
    f["active"] += 1
    f["by_segment"][p.segment.value] += 1
    f["by_category"][p.category.value] += 1
    for program in set(p.programs):
        f["by_program"][program.value] += 1
    f["by_funding_source"][p.funding_source.value] += 1
    f["by_sex"][p.sex.value] += 1
    f["by_age_band"][p.age_band.value] += 1
    source = p.funding_source.value
    for payer, amount in p.contributions.by_payer.items():
        f["monthly_contributions_by_payer"][payer.value] += amount
        f["monthly_contributions_by_funding_source"][source] += amount
        f["monthly_contributions_by_funding_source_and_payer"][source][payer.value] += amount
        f["annual_contributions_by_funding_source"][source] += 12 * amount


def _count_flow(f: dict[str, int], day: date, today: date) -> None:
    f["total"] += 1
    f["today"] += day == today
    f["this_month"] += (day.year, day.month) == (today.year, today.month)


FLOW_OF = {
    ev.ParticipantRegistered: "enrollments",
    ev.ParticipantTerminated: "terminations",
    ev.ParticipantReactivated: "reactivations",
}


def reference(stream: list[tuple[str, ev.CloudEvent[Any]]], today: date) -> dict[str, dict[str, Any]]:  # noqa: C901 - the rules restated plainly, one branch per kind of outcome, to check the fold against
    """Figures per region from the stream (each event id once), for the WIB date `today`."""
    figures: dict[str, dict[str, Any]] = {}
    final: dict[str, ev.Participant] = {}
    once: dict[str, ev.CloudEvent[Any]] = {}
    for _, event in stream:
        once.setdefault(event.id, event)

    def at(code: str) -> list[dict[str, Any]]:
        return [figures.setdefault(c, _empty()) for c in _chain(code)]

    for event in once.values():
        if isinstance(event, ev.RequestRejected):
            for f in at(event.data.region_code or "ID"):
                _count_rejection(f, event.data)
            continue
        participant: ev.Participant = event.data.participant
        final[participant.participant_id] = participant
        if (flow := FLOW_OF.get(type(event))) is None:
            continue
        for f in at(_where(participant)):
            _count_flow(f[flow], _wib(event.time), today)
    for p in final.values():
        if p.status is ev.ParticipantStatus.ACTIVE:
            for f in at(_where(p)):
                _count_active(f, p)
    return figures


def compare(actual: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> list[str]:
    """Regions whose figures differ; a region missing on one side counts as all zeros."""
    zero = _empty()
    return sorted(
        code for code in actual.keys() | expected.keys() if actual.get(code, zero) != expected.get(code, zero)
    )


def figures_of(aggregate: ev.RegionAggregate | dict[str, Any]) -> dict[str, Any]:
    """The counted figures of a snapshot (API JSON or model), in the reference's shape."""
    data = aggregate.model_dump(mode="json") if isinstance(aggregate, ev.RegionAggregate) else aggregate
    return {key: data[key] for key in FIGURE_KEYS}
