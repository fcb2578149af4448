"""The inputs and what they must lead to: the stream of requests, and the answer registration must give to each."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from shared import events as ev
from shared.messaging import encode
from shared.reasons import ReasonCode
from shared.regions import NATIONAL_CODE, Regions
from synthetic import LabelledRequest, generate
from tests.e2e.reliability.plan import MAIN_PARTNER, REGION_CODES, Plan, authority, fraction, partner_for


@dataclass
class Participation:
    """The model's view of one participation (a NIK in a segment), kept in stream order."""

    request: ev.EnrollmentRequest
    partner: str
    active: bool = True

    @property
    def leaf(self) -> str:
        """Where reporting counts it: the domicile kecamatan when inside the responsible regency/city."""
        domicile, region = self.request.worker.domicile_kecamatan, self.request.region_code
        return domicile if domicile is not None and domicile.startswith(region + ".") else region

    @property
    def regions(self) -> list[str]:
        return [c for c in (self.request.region_code, self.request.worker.domicile_kecamatan) if c]

    @property
    def contact(self) -> tuple[str | None, str | None]:
        worker = self.request.worker
        if not worker.contact_consent:
            return None, None
        return worker.email, worker.phone


@dataclass
class Expectation:
    """What one request (one partner's request id) must be answered with."""

    request_key: str
    outcome: Literal["registered", "terminated", "reactivated", "rejected"]
    codes: frozenset[str] = frozenset()
    region: str | None = None  # a rejection's region code as registration can know it
    participation: tuple[str, str] | None = None  # (nik, segment) for an accepted request
    contact: tuple[str | None, str | None] = (None, None)  # the worker's (e-mail, phone), consent given
    scopes: tuple[str, ...] = ()  # regions a subscriber may hear this in


@dataclass
class _Followup:
    action: Literal["terminate", "reactivate", "resend"]
    participation: tuple[str, str]
    event: ev.CloudEvent[Any] | None = None  # for a re-send


@dataclass
class Workload:
    today: date
    records: list[tuple[bytes, bytes, dict[str, str]]] = field(default_factory=list)
    expectations: dict[str, Expectation] = field(default_factory=dict)
    participations: dict[tuple[str, str], Participation] = field(default_factory=dict)
    flows: list[tuple[str, str]] = field(default_factory=list)  # (leaf, enrollments|terminations|reactivations)
    rejections: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)  # (leaf, partner, codes)
    niks: set[str] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)  # what the stream holds, for the report

    @property
    def accepted(self) -> int:
        return sum(e.outcome != "rejected" for e in self.expectations.values())


class _Builder:
    """Builds the stream and, request by request in stream order, what the system must make of it.

    A worker's requests share a key (the NIK), so they reach one partition in the order published; the
    model here follows the same order, so its answer for each request is the one registration must give.
    """

    def __init__(self, plan: Plan, today: date, regions: Regions) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.regions = regions
        self.work = Workload(today)
        self.sent: dict[str, ev.CloudEvent[Any]] = {}
        self.followups: dict[int, list[_Followup]] = defaultdict(list)
        self.serial = 0

    def build(self) -> Workload:
        items = generate(
            self.plan.requests,
            self.plan.seed,
            today=self.work.today,
            invalid_share=self.plan.invalid_share,
            duplicate_share=self.plan.duplicate_share,
            regions=self.regions,
            region_codes=REGION_CODES,
        )
        for index, item in enumerate(items):
            for followup in self.followups.pop(index, []):
                self.followup(followup, index)
            self.enrollment(item, index)
        for index in sorted(self.followups):
            for followup in self.followups.pop(index):
                self.followup(followup, index)
        return self.work

    # --- emitting ------------------------------------------------------------------------------------------

    def emit(self, nik: str, event: ev.CloudEvent[Any], kind: str) -> None:
        value, headers = encode(event)
        self.work.records.append((nik.encode(), value, headers))
        self.work.kinds[kind] += 1

    def later(self, index: int, followup: _Followup, low: int = 20, high: int = 400) -> None:
        self.followups[index + self.rng.randint(low, high)].append(followup)

    def expect(self, expectation: Expectation, partner: str) -> None:
        self.work.expectations[expectation.request_key] = expectation
        if expectation.outcome == "rejected":
            region = expectation.region or NATIONAL_CODE
            self.work.rejections.append((region, partner, expectation.codes))

    def request_id(self, base: str, action: str) -> str:
        self.serial += 1
        return f"{base}-{action}-{self.serial}"

    # --- enrollments ----------------------------------------------------------------------------------------

    def enrollment(self, item: LabelledRequest, index: int) -> None:
        request = item.request
        if request.worker.contact_consent and fraction(request.request_id, "consent") >= self.plan.consent_share:
            request = request.model_copy(
                update={"worker": request.worker.model_copy(update={"contact_consent": False})}
            )
        nik = request.worker.nik
        partner = partner_for(request.request_id, self.plan)
        key = f"{partner}:{request.request_id}"
        self.work.niks.add(nik)
        if item.is_duplicate:  # the partner sends it again: sometimes the same event, sometimes a new one
            event = self.sent[key]
            if self.rng.random() < 0.5:
                event = event.model_copy(update={"id": ev.new_event_id()})
            self.emit(nik, event, "enrollment re-sent")
            return
        codes = set(item.expected) | authority(partner, request, self.regions)
        pkey = (nik, request.segment.value)
        current = self.work.participations.get(pkey)
        if not codes and partner == MAIN_PARTNER and current is None and self.rng.random() < 0.01:
            # Out of order: the partner's termination overtakes the enrollment it follows.
            self.terminate(pkey, index, participation=Participation(request, partner, active=False), early=True)
        event = ev.EnrollmentRequested(source=f"partner/{partner}", subject=request.request_id, data=request)
        self.sent[key] = event
        if not codes and current is not None and current.active:
            codes = {ReasonCode.PARTICIPANT_ALREADY_ACTIVE.value}
        if codes:
            region = request.region_code if request.region_code in self.regions else None
            self.expect(Expectation(key, "rejected", frozenset(codes), region), partner)
            self.emit(nik, event, "enrollment, invalid or not allowed")
            return
        participation = Participation(request, partner)
        self.work.participations[pkey] = participation
        self.accept(key, "registered", participation, partner)
        self.emit(nik, event, "enrollment, valid")
        if partner != MAIN_PARTNER:
            return
        roll = self.rng.random()
        if roll < 0.05:
            self.later(index, _Followup("terminate", pkey))
        elif roll < 0.06:
            self.later(index, _Followup("reactivate", pkey))  # while still active: refused

    def accept(
        self, key: str, outcome: Literal["registered", "terminated", "reactivated"], p: Participation, partner: str
    ) -> None:
        pkey = (p.request.worker.nik, p.request.segment.value)
        self.expect(Expectation(key, outcome, participation=pkey, contact=p.contact, scopes=tuple(p.regions)), partner)
        flow = {"registered": "enrollments", "terminated": "terminations", "reactivated": "reactivations"}[outcome]
        self.work.flows.append((p.leaf, flow))

    # --- lifecycle requests ---------------------------------------------------------------------------------

    def followup(self, followup: _Followup, index: int) -> None:
        if followup.action == "resend":
            assert followup.event is not None
            self.emit(followup.participation[0], followup.event, "lifecycle re-sent")
        elif followup.action == "terminate":
            self.terminate(followup.participation, index)
        else:
            self.reactivate(followup.participation, index)

    def terminate(
        self, pkey: tuple[str, str], index: int, *, participation: Participation | None = None, early: bool = False
    ) -> None:
        p = participation or self.work.participations[pkey]
        nik, segment = pkey
        request_id = self.request_id(p.request.request_id, "t")
        key = f"{p.partner}:{request_id}"
        event = ev.TerminationRequested(
            source=f"partner/{p.partner}",
            subject=request_id,
            data=ev.TerminationRequest(
                request_id=request_id,
                nik=nik,
                segment=ev.Segment(segment),
                reason=ev.TerminationReason.RESIGNED,
                effective_date=max(self.work.today, p.request.coverage_start),
            ),
        )
        current = None if early else self.work.participations.get(pkey)
        if current is None:
            self.expect(Expectation(key, "rejected", frozenset({ReasonCode.PARTICIPANT_UNKNOWN.value})), p.partner)
            self.emit(nik, event, "termination before its enrollment")
            return
        if not current.active:
            codes = frozenset({ReasonCode.PARTICIPANT_NOT_ACTIVE.value})
            self.expect(Expectation(key, "rejected", codes, current.request.region_code), p.partner)
            self.emit(nik, event, "termination of a terminated participant")
        else:
            current.active = False
            self.accept(key, "terminated", current, p.partner)
            self.emit(nik, event, "termination")
            roll = self.rng.random()
            if roll < 0.5:
                self.later(index, _Followup("reactivate", pkey))
            elif roll < 0.7:
                self.later(index, _Followup("terminate", pkey))
        if self.rng.random() < 0.1:
            self.later(index, _Followup("resend", pkey, event))

    def reactivate(self, pkey: tuple[str, str], index: int) -> None:
        current = self.work.participations[pkey]
        nik, segment = pkey
        request_id = self.request_id(current.request.request_id, "r")
        key = f"{current.partner}:{request_id}"
        event = ev.ReactivationRequested(
            source=f"partner/{current.partner}",
            subject=request_id,
            data=ev.ReactivationRequest(
                request_id=request_id, nik=nik, segment=ev.Segment(segment), effective_date=self.work.today
            ),
        )
        if current.active:
            codes = frozenset({ReasonCode.PARTICIPANT_ALREADY_ACTIVE.value})
            self.expect(Expectation(key, "rejected", codes, current.request.region_code), current.partner)
            self.emit(nik, event, "reactivation of an active participant")
        else:
            current.active = True
            self.accept(key, "reactivated", current, current.partner)
            self.emit(nik, event, "reactivation")
        if self.rng.random() < 0.1:
            self.later(index, _Followup("resend", pkey, event))


def build_workload(plan: Plan, today: date, regions: Regions) -> Workload:
    return _Builder(plan, today, regions).build()
