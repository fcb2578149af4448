"""The reliability and security suite: the non-negotiables, tried hard under faults.

    python -m tests.e2e.reliability             the reduced run (what `make test` runs, a few minutes)
    python -m tests.e2e.reliability --full      the full run; writes its summary to docs/reliability.md

A run starts a private Kafka + FerretDB stack of its own on free ports (a broker restart and a store outage
would break every other test sharing the session's servers), the three services as separate processes
(two instances of registration and of reporting, each pair in one consumer group), an SMTP server and an
HTTP receiver standing in for workers' mailboxes, the SMS gateway, partners' webhooks and subscribers.

It publishes a seeded stream of enrollment requests at a steady rate (invalid ones, partners' re-sends,
unauthorised partners and lifecycle requests in and out of order mixed in) and, while the stream flows,
injects faults at random moments: kill -9 of a random service instance (restarted each time), a broker
restart, a store outage (FerretDB stopped, then started) and a rebalance (one instance of each group killed
and left down until the survivor has taken its partitions over). Then it compares what the system holds and
published with an independent computation from the inputs, and scans every place a NIK could leak.

The explanation kept in docs/reliability.md is the template `DOC_TEMPLATE` below: a full run regenerates the
file from it, so edit the template, not the file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import pickle
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from services.registration.domain.contributions import calculate
from services.registration.domain.synthetic import LabelledRequest, generate
from shared import events as ev
from shared.messaging import encode
from shared.privacy import NIK_PATTERN, mask_nik
from shared.reasons import ReasonCode
from shared.regions import NATIONAL_CODE, Regions, load_regions
from shared.topics import (
    DEAD_LETTERS,
    ENROLLMENT_OUTCOMES,
    ENROLLMENT_REQUESTS,
    NOTIFICATION_DELIVERIES,
    REGION_AGGREGATES,
)
from tests.support import ROOT, ServiceProcess, free_port

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

WIB = ZoneInfo("Asia/Jakarta")  # registration's "today" and reporting's business date
log = logging.getLogger("reliability")
STACK = ROOT / "deploy" / "local" / "stack"
DOC = ROOT / "docs" / "reliability.md"

# --- What a run does ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How hard a run tries: the size of the stream, the faults, and the pace."""

    name: str
    requests: int  # enrollment requests generated; lifecycle requests come on top
    kills: int
    outage_seconds: float
    broker_restart: bool
    rebalance: bool
    rate: float  # requests published per second: the stream flows while the faults land
    seed: int = 20_250_309
    invalid_share: float = 0.05
    duplicate_share: float = 0.05
    # Shares of requests sent by the partner with little authority and by the one registration does not know.
    limited_share: float = 0.03
    unknown_share: float = 0.02
    # Share of valid workers who consented to be contacted (of those who gave a phone or an e-mail address).
    # Kept small: notification's ledger work on FerretDB grows with the ledger (see docs/reliability.md).
    consent_share: float = 0.05
    # How often notification's sweeper looks for deliveries to resume: each look scans the ledger on FerretDB.
    sweep_seconds: float = 2
    settle_seconds: float = 600  # how long everything may take to settle after the last fault

    def describe(self) -> str:
        faults = [f"{self.kills} x kill -9"]
        if self.broker_restart:
            faults.append("broker restart")
        faults.append(f"FerretDB stopped {self.outage_seconds:g} s")
        if self.rebalance:
            faults.append("rebalance (one instance of each group killed)")
        return f"{self.requests} enrollment requests at {self.rate:g}/s; " + ", ".join(faults)


REDUCED = Plan("reduced", requests=1000, kills=3, outage_seconds=5, broker_restart=True, rebalance=True, rate=25)
FULL = Plan(
    "full",
    requests=20_000,
    kills=6,
    outage_seconds=20,
    broker_restart=True,
    rebalance=True,
    rate=110,
    sweep_seconds=10,
    settle_seconds=3600,
)

# Where workers are enrolled: seven regencies/cities of Greater Jakarta in three provinces (100 kecamatan).
# Few regions, many workers each: every snapshot of reporting carries weight, and the snapshot stream stays
# within what one FerretDB (shared by every service here) serves alongside the rest.
REGION_CODES = ("31.71", "31.74", "32.01", "32.71", "32.75", "32.76", "36.71")
MAIN_PARTNER = "mitra-jawa"
LIMITED_PARTNER = "mitra-bogor"
UNKNOWN_PARTNER = "mitra-tak-terdaftar"
PARTNERS: tuple[dict[str, Any], ...] = (
    {
        "partner_id": MAIN_PARTNER,
        "name": "Dinas Sosial se-Jawa bagian barat (uji keandalan)",
        "regions": ["31", "32", "36"],
        "segments": [s.value for s in ev.Segment],
        "funding_sources": [f.value for f in ev.FundingSource],
    },
    {
        # May enroll only in Kota Bogor, only PU and BPU, only with these funding sources.
        "partner_id": LIMITED_PARTNER,
        "name": "BKPSDM Kota Bogor (uji keandalan)",
        "regions": ["32.71"],
        "segments": ["PU", "BPU"],
        "funding_sources": ["APBD", "EMPLOYER", "SELF"],
    },
)
# Only the partner with little authority is told of rejections by webhook; the main partner reads its outcomes
# from its own topic (production profile), so notification records its rejections as undeliverable.
PARTNER_SECRETS = {LIMITED_PARTNER: "mitra-bogor-signing-secret-0123"}
SMS_SECRET = "reliability-sms-gateway-secret"  # noqa: S105 - a test receiver's secret


@dataclass(frozen=True)
class Subscriber:
    subscription_id: str
    scope: str
    kinds: frozenset[str]
    channel: ev.DeliveryChannel
    address: str  # the path on the receiver for webhooks


SUBSCRIBERS = (
    Subscriber(
        "camat-pancoran-mas",
        "32.76.01",
        frozenset({"participant.registered", "participant.terminated", "participant.reactivated", "request.rejected"}),
        ev.DeliveryChannel.WEBHOOK,
        "/subscribers/camat-pancoran-mas",
    ),
    Subscriber(
        "bappeda-kota-bogor",
        "32.71",
        frozenset({"request.rejected"}),
        ev.DeliveryChannel.EMAIL,
        "bappeda@bogor.example",
    ),
    Subscriber(
        "disnaker-banten", "36", frozenset({"participant.terminated"}), ev.DeliveryChannel.SMS, "+6281100000036"
    ),
)
KIND_OF = {
    "registered": "participant.registered",
    "terminated": "participant.terminated",
    "reactivated": "participant.reactivated",
    "rejected": "request.rejected",
}


def _fraction(text: str, salt: str) -> float:
    """A stable number in [0, 1) for a request id: the same request (and its re-sends) always draw the same."""
    return zlib.crc32(f"{salt}:{text}".encode()) / 2**32


def partner_for(request_id: str, plan: Plan) -> str:
    """Which partner sends a request: most the main partner, some a partner with little authority, a few
    one that registration does not know. Fixed by the request id, so a re-send comes from the same one."""
    draw = _fraction(request_id, "partner")
    if draw < plan.unknown_share:
        return UNKNOWN_PARTNER
    return LIMITED_PARTNER if draw < plan.unknown_share + plan.limited_share else MAIN_PARTNER


def _under(code: str, scope: str) -> bool:
    return scope in {NATIONAL_CODE, code} or code.startswith(scope + ".")


def chain(code: str) -> list[str]:
    """A region and everything it rolls up into, by the structure of the code: 32.71.01 -> 32.71, 32, ID."""
    if code == NATIONAL_CODE:
        return [code]
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)] + [NATIONAL_CODE]


def authority(
    partner_id: str, request: ev.EnrollmentRequest, regions: Regions, partners: Iterable[dict[str, Any]] = PARTNERS
) -> set[str]:
    """What the partner may not submit, from the partners seeded (not from registration's code)."""
    partner = next((p for p in partners if p["partner_id"] == partner_id and p.get("active", True)), None)
    if partner is None:
        return {ReasonCode.PARTNER_UNKNOWN.value}
    codes: set[str] = set()
    code = request.region_code
    if code not in regions or not any(_under(code, scope) for scope in partner["regions"]):
        codes.add(ReasonCode.PARTNER_REGION_NOT_ALLOWED.value)
    if request.segment.value not in partner["segments"]:
        codes.add(ReasonCode.PARTNER_SEGMENT_NOT_ALLOWED.value)
    if request.funding_source.value not in partner["funding_sources"]:
        codes.add(ReasonCode.PARTNER_FUNDING_NOT_ALLOWED.value)
    return codes


def age_band(birth: date, on: date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    for lower, band in ((60, "60+"), (50, "50-59"), (40, "40-49"), (30, "30-39"), (20, "20-29")):
        if years >= lower:
            return band
    return "15-19"


# --- The inputs and what they must lead to -----------------------------------------------------------------


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
        if request.worker.contact_consent and _fraction(request.request_id, "consent") >= self.plan.consent_share:
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


# --- The independent computation of the aggregates ----------------------------------------------------------

Figures = dict[str, Any]


def _bump(figures: dict[str, Any], path: tuple[str, ...], amount: int = 1) -> None:
    for step in path[:-1]:
        figures = figures.setdefault(step, {})
    figures[path[-1]] = figures.get(path[-1], 0) + amount


def expected_figures(work: Workload) -> dict[str, Figures]:  # noqa: C901 - one branch per kind of figure
    """Per region: the figures reporting must show, from the inputs alone (contributions priced with
    registration's effective-dated rate table, the one piece of domain knowledge borrowed)."""
    figures: dict[str, Figures] = defaultdict(dict)
    for p in work.participations.values():
        if not p.active:
            continue
        request = p.request
        contributions = calculate(request, max(work.today, request.coverage_start))
        rows: list[tuple[tuple[str, ...], int]] = [
            (("active",), 1),
            (("by_segment", request.segment.value), 1),
            (("by_category", request.category.value), 1),
            (("by_funding_source", request.funding_source.value), 1),
            (("by_sex", request.worker.sex.value), 1),
            (("by_age_band", age_band(request.worker.birth_date, work.today)), 1),
        ]
        rows += [(("by_program", program.value), 1) for program in set(request.programs)]
        source = request.funding_source.value
        for payer, amount in contributions.by_payer.items():
            rows += [
                (("monthly_contributions_by_payer", payer.value), amount),
                (("monthly_contributions_by_funding_source", source), amount),
            ]
        for code in chain(p.leaf):
            for path, amount in rows:
                _bump(figures[code], path, amount)
    for leaf, flow in work.flows:
        for code in chain(leaf):
            _bump(figures[code], (flow, "total"))
    for leaf, partner, codes in work.rejections:
        for code in chain(leaf):
            _bump(figures[code], ("rejections",))
            _bump(figures[code], ("rejections_by_partner", partner))
            for reason in codes:
                _bump(figures[code], ("rejections_by_reason", reason))
    return {code: _sparse(f) for code, f in figures.items()}


COMPARED = (
    "active",
    "by_segment",
    "by_category",
    "by_program",
    "by_funding_source",
    "by_sex",
    "by_age_band",
    "monthly_contributions_by_payer",
    "monthly_contributions_by_funding_source",
    "enrollments",
    "terminations",
    "reactivations",
    "rejections",
    "rejections_by_reason",
    "rejections_by_partner",
)


def _sparse(value: Any) -> Any:
    """Zeros dropped at every depth, so a missing counter and a zero one compare equal."""
    if isinstance(value, dict):
        kept = {k: _sparse(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (0, {}, None)}
    return value


def observed_figures(snapshot: dict[str, Any]) -> Figures:
    """The compared figures of a snapshot or an API answer. `today` and `this_month` are left out: they
    depend on when each outcome was decided, which the inputs do not say (totals are compared)."""
    picked = {key: snapshot.get(key) for key in COMPARED}
    for flow in ("enrollments", "terminations", "reactivations"):
        picked[flow] = {"total": (snapshot.get(flow) or {}).get("total", 0)}
    return _sparse(picked)


def differences(actual: dict[str, Figures], expected: dict[str, Figures]) -> list[str]:
    out = []
    for code in sorted(actual.keys() | expected.keys()):
        got, want = actual.get(code, {}), expected.get(code, {})
        if got != want:
            keys = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
            out.append(f"{code}: " + "; ".join(f"{k} {got.get(k)} != {want.get(k)}" for k in keys[:3]))
    return out


# --- The private stack --------------------------------------------------------------------------------------


@dataclass
class PrivateStack:
    """Kafka and FerretDB of this run alone, through deploy/local/stack with ports and state of its own."""

    state: Path
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    mongo_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LINDUNGI_STATE_DIR": str(self.state),
            "LINDUNGI_KAFKA_PORT": str(self.kafka_port),
            "LINDUNGI_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LINDUNGI_MONGO_PORT": str(self.mongo_port),
        }

    async def run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            str(STACK), *args, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"stack {' '.join(args)} failed:\n{output.decode(errors='replace')}")

    async def start(self) -> None:
        await self.run("start")

    async def stop_one(self, name: str) -> None:
        await self.run("stop-one", name)

    async def start_one(self, name: str) -> None:
        await self.run("start-one", name)

    def reset(self) -> None:
        """Synchronous on purpose: the cleanup of a cancelled run must not be cancelled in turn."""
        subprocess.run([str(STACK), "reset"], env=self.env(), capture_output=True, check=False)


# --- Stand-ins for the outside world: mailboxes, webhooks, the SMS gateway ----------------------------------


@dataclass(frozen=True)
class Receipt:
    channel: ev.DeliveryChannel
    key: str  # the idempotency key: the ledger's delivery id
    recipient: str  # the path of a webhook, the phone of an SMS, the address of an e-mail
    text: str  # everything received, for the NIK scan


class MailSink:
    """A real SMTP server (aiosmtpd) that keeps every message and its idempotency key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.receipts: list[Receipt] = []
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        receipt = Receipt(
            ev.DeliveryChannel.EMAIL,
            str(message["X-Lindungi-Idempotency-Key"]),
            str(message["To"]),
            raw.decode("utf-8", "replace"),
        )
        with self.lock:
            self.receipts.append(receipt)
        return "250 Message accepted"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


class WebReceiver:
    """An HTTP server for partners' and subscribers' webhooks and the SMS gateway: answers 200 and keeps
    every request with its idempotency key. Receivers deduplicate by that key, as partners are asked to."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path == "/sms":
                    channel, recipient = ev.DeliveryChannel.SMS, str(json.loads(body).get("to"))
                else:
                    channel, recipient = ev.DeliveryChannel.WEBHOOK, self.path
                text = json.dumps(headers) + body.decode("utf-8", "replace")
                with receiver.lock:
                    receiver.receipts.append(Receipt(channel, headers.get("idempotency-key", ""), recipient, text))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- The services -----------------------------------------------------------------------------------------


def _clean_environment() -> dict[str, str]:
    """The parent's environment without any service setting: a test session may have set some for the
    shared servers, and this run must talk only to its own."""
    prefixes = ("LINDUNGI_", "REGISTRATION_", "REPORTING_", "NOTIFICATION_", "KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@dataclass
class Fleet:
    """Every service instance of the run, and which of them the faults took down on purpose."""

    instances: dict[str, ServiceProcess]
    down: set[str] = field(default_factory=set)  # killed by a fault and not restarted yet
    exits: list[str] = field(default_factory=list)  # instances that died without being killed

    @classmethod
    def create(cls, plan: Plan, stack: PrivateStack, workdir: Path, mail: MailSink, web: WebReceiver) -> Fleet:
        secrets = {
            "LINDUNGI_NIK_HASH_SECRET": base64.b64encode(os.urandom(32)).decode(),
            "LINDUNGI_SEAL_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
        base = {
            **_clean_environment(),
            **secrets,
            "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
            "LINDUNGI_MONGODB_URL": stack.mongodb_url,
            "LINDUNGI_LOG_LEVEL": "INFO",
        }
        partners_file = workdir / "partners.json"
        partners_file.write_text(json.dumps(list(PARTNERS)))
        seed_file = workdir / "notification-seed.json"
        seed_file.write_text(json.dumps(notification_seed(web)))
        registration = {
            **base,
            "REGISTRATION_PARTNERS_SEED_FILE": str(partners_file),
            "REGISTRATION_PARTNER_OUTCOME_TOPICS": "true",  # the production ACL profile's copies
            "REGISTRATION_BATCH_MAX_RECORDS": "200",
        }
        reporting = {**base, "REPORTING_PUBLISH_INTERVAL_SECONDS": "5", "REPORTING_TARGETS_REFRESH_SECONDS": "30"}
        notification = {
            **base,
            "NOTIFICATION_SEED_FILE": str(seed_file),
            "NOTIFICATION_SMTP_PORT": str(mail.port),
            "NOTIFICATION_SMS_GATEWAY_URL": web.url("/sms"),
            "NOTIFICATION_SMS_GATEWAY_SECRET": SMS_SECRET,
            # Retries and leases short enough that a killed instance's deliveries are resumed within the run.
            "NOTIFICATION_RETRY_INITIAL": "0.5",
            "NOTIFICATION_RETRY_MAX": "4",
            "NOTIFICATION_RETRY_JITTER": "0.5",
            "NOTIFICATION_SEND_TIMEOUT": "5",
            "NOTIFICATION_MAX_ATTEMPTS": "20",
            "NOTIFICATION_LEASE": "15",
            "NOTIFICATION_SWEEP_INTERVAL": str(plan.sweep_seconds),
            # Fewer deliveries in flight than FerretDB's connection pool (100 per database): with the default
            # (2000) hundreds of concurrent claims deadlock that pool and the notification database never
            # answers again (defect reported with issue 9; tests/e2e/test_reliability.py shows it).
            "NOTIFICATION_CHANNEL_CAPACITY": "25",
        }
        copies = ("a", "b") if plan.rebalance else ("a",)
        instances: dict[str, ServiceProcess] = {}
        for name, env in (("registration", registration), ("reporting", reporting)):
            for copy in copies:
                instances[f"{name}-{copy}"] = ServiceProcess(name, env, workdir / f"{name}-{copy}.log")
        instances["notification"] = ServiceProcess("notification", notification, workdir / "notification.log")
        return cls(instances)

    def alive(self) -> list[ServiceProcess]:
        return [s for name, s in self.instances.items() if name not in self.down]

    def of(self, service: str) -> list[str]:
        return [name for name in self.instances if name.startswith(service)]

    async def start_all(self) -> None:
        # The second instances start once the first are ready: two registration instances starting at the
        # same moment race on seeding the partners and one of them fails (see the report of issue 9).
        for wave in (
            [s for n, s in self.instances.items() if not n.endswith("-b")],
            [s for n, s in self.instances.items() if n.endswith("-b")],
        ):
            for service in wave:
                service.start()
            await asyncio.gather(*(s.wait_ready(180) for s in wave))

    def kill(self, name: str) -> None:
        self.down.add(name)
        self.instances[name].kill()

    async def restart(self, name: str) -> None:
        """Start a killed instance again; one that dies while starting is a finding, and is tried again."""
        service = self.instances[name]
        for _ in range(3):
            service.start()
            try:
                await service.wait_ready(180)
            except (RuntimeError, TimeoutError) as error:
                self.exits.append(f"{name} did not start again: {str(error)[-1500:]}")
                service.kill()
                continue
            self.down.discard(name)
            return
        raise RuntimeError(f"{name} cannot be started again: {self.exits[-1]}")

    async def watch(self) -> None:
        """Until cancelled: an instance that exits without a fault having killed it is a finding; it is
        started again so the run can go on."""
        while True:
            await asyncio.sleep(1)
            for name, service in self.instances.items():
                process = service.process
                if name in self.down or process is None or process.poll() is None:
                    continue
                self.exits.append(f"{name} exited with {process.returncode}: {service.logs()[-1500:]}")
                self.down.add(name)
                await self.restart(name)

    def stop_all(self) -> None:
        for service in self.instances.values():
            service.stop()


def notification_seed(web: WebReceiver) -> dict[str, Any]:
    partners = [
        {"partner_id": p, "webhook_url": web.url(f"/partners/{p}"), "secret": secret}
        for p, secret in PARTNER_SECRETS.items()
    ]
    subscriptions = []
    for s in SUBSCRIBERS:
        item: dict[str, Any] = {
            "subscription_id": s.subscription_id,
            "name": s.subscription_id,
            "stakeholder": "regional_government",
            "scope": s.scope,
            "kinds": sorted(s.kinds),
            "channel": s.channel.value,
            "address": web.url(s.address) if s.channel is ev.DeliveryChannel.WEBHOOK else s.address,
        }
        if s.channel is ev.DeliveryChannel.WEBHOOK:
            item["secret"] = f"{s.subscription_id}-signing-secret"
        subscriptions.append(item)
    return {"partners": partners, "subscriptions": subscriptions}


# --- Publishing the stream and watching it flow ------------------------------------------------------------


class Publisher:
    """Publishes the stream at the plan's rate, keyed by NIK, in order; holds while the broker is down.

    A chunk whose sending failed is sent again whole: the intake may then hold a record twice, which
    registration must answer from its request log (a replay, like a partner's retry).
    """

    def __init__(self, bootstrap: str, records: list[tuple[bytes, bytes, dict[str, str]]], rate: float) -> None:
        self.bootstrap = bootstrap
        self.records = records
        self.rate = rate
        self.published = 0
        self.resent_chunks = 0
        self.open = asyncio.Event()
        self.open.set()
        self.done = asyncio.Event()

    async def _producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=5, request_timeout_ms=30_000
        )
        await producer.start()
        return producer

    async def run(self) -> None:
        chunk = max(1, int(self.rate / 5))  # five chunks a second
        producer = await self._producer()
        started = time.monotonic()
        try:
            for first in range(0, len(self.records), chunk):
                due = started + first / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                while True:
                    await self.open.wait()
                    try:
                        futures = [
                            await producer.send(
                                ENROLLMENT_REQUESTS.name,
                                value,
                                key=key,
                                headers=[(k, v.encode()) for k, v in headers.items()],
                            )
                            for key, value, headers in self.records[first : first + chunk]
                        ]
                        await asyncio.gather(*futures)
                        break
                    except Exception:  # noqa: BLE001 - any failure: a new producer, the same chunk again
                        self.resent_chunks += 1
                        with contextlib.suppress(Exception):
                            await producer.stop()
                        await asyncio.sleep(1)
                        producer = await self._retry(self._producer)
                self.published = min(len(self.records), first + chunk)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            self.done.set()

    @staticmethod
    async def _retry(make: Callable[[], Awaitable[AIOKafkaProducer]]) -> AIOKafkaProducer:
        while True:
            try:
                return await make()
            except Exception:  # noqa: BLE001 - the broker may still be coming back
                await asyncio.sleep(1)


class Progress:
    """Follows the outcome topic: which request keys are answered so far (for the fault schedule and the
    end of the run; the verification reads the topic again from the start)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.answered: set[str] = set()

    async def run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                ENROLLMENT_OUTCOMES.name, bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest"
            )
            try:
                await consumer.start()
                while True:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            data = json.loads(record.value)["data"]
                            self.answered.add(f"{data['partner_id']}:{data['request_id']}")
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the broker restarts during a run: read again from the start
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()


# --- Faults -------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    target: str
    at_seconds: float  # since the stream started
    published: int  # requests published when it struck
    answered: int  # requests answered when it struck: published - answered were in flight
    seconds: float = 0.0  # how long it lasted, recovery included
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def health_of(client: httpx.AsyncClient, service: ServiceProcess) -> tuple[int, dict[str, Any]]:
    try:
        response = await client.get(f"{service.url}/health", timeout=10)
        return response.status_code, response.json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        return 0, {}


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float, interval: float = 0.5) -> bool:
    """Poll a condition until it holds or the time is up; never a fixed sleep standing in for a condition."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


class Chaos:
    """Injects the plan's faults at random moments while the stream is published."""

    def __init__(  # noqa: PLR0913, PLR0917 - what the faults act on
        self, plan: Plan, stack: PrivateStack, fleet: Fleet, publisher: Publisher, progress: Progress, keys: int
    ) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed + 1)
        self.stack = stack
        self.fleet = fleet
        self.publisher = publisher
        self.progress = progress
        self.keys = keys  # distinct requests: what `progress.answered` reaches at the end
        self.faults: list[Fault] = []
        self.started = time.monotonic()

    def _actions(self) -> list[tuple[str, Callable[[Fault], Awaitable[None]]]]:
        services = ["registration", "reporting", "notification"]
        self.rng.shuffle(services)
        # Each service is killed at least once; the rest are any service.
        targets = services[: self.plan.kills] + [
            self.rng.choice(["registration", "reporting", "notification"])
            for _ in range(self.plan.kills - len(services))
        ]
        actions: list[tuple[str, Callable[[Fault], Awaitable[None]]]] = [
            ("kill -9", lambda f, t=t: self.kill(f, t)) for t in targets
        ]
        if self.plan.broker_restart:
            actions.append(("broker restart", self.broker_restart))
        actions.append(("store outage", self.store_outage))
        if self.plan.rebalance:
            actions.append(("rebalance", self.rebalance))
        self.rng.shuffle(actions)
        return actions

    async def run(self) -> None:
        actions = self._actions()
        moments = sorted(self.rng.uniform(0.05, 0.85) for _ in actions)
        for (kind, action), moment in zip(actions, moments, strict=True):
            await eventually(
                lambda m=moment: (
                    self.publisher.published >= m * len(self.publisher.records) or self.publisher.done.is_set()
                ),
                3600,
            )
            await asyncio.sleep(self.rng.uniform(0, 1.5))  # not on a chunk boundary
            fault = Fault(
                kind,
                "",
                round(time.monotonic() - self.started, 1),
                self.publisher.published,
                len(self.progress.answered),
            )
            began = time.monotonic()
            log.info("fault %d/%d: %s (%d published, %d answered)", len(self.faults) + 1, len(actions), kind,
                     fault.published, fault.answered)  # fmt: skip
            await action(fault)
            fault.seconds = round(time.monotonic() - began, 1)
            log.info("  %s %s: %s", kind, fault.target, "; ".join(fault.problems + fault.notes) or "done")
            self.faults.append(fault)

    async def kill(self, fault: Fault, service: str) -> None:
        name = self.rng.choice([n for n in self.fleet.of(service) if n not in self.fleet.down])
        fault.target = name
        self.fleet.kill(name)
        await asyncio.sleep(self.rng.uniform(0.2, 3.0))
        await self.fleet.restart(name)

    async def _watch_health(self, what: str, stop: asyncio.Event) -> dict[str, set[str]]:
        """Poll every live instance's /health until `stop`; what each said about `what` (kafka/mongodb)."""
        seen: dict[str, set[str]] = defaultdict(set)
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                names = [n for n in self.fleet.instances if n not in self.fleet.down]
                answers = await asyncio.gather(*(health_of(client, self.fleet.instances[n]) for n in names))
                for name, (status, checks) in zip(names, answers, strict=True):
                    if status == 503 and checks.get(what) is False:
                        seen[name].add("reported")
                    elif status == 200:
                        seen[name].add("up")
                    else:
                        seen[name].add(f"answered {status} {checks}")
                await asyncio.sleep(0.3)
        return seen

    async def _recovered(self, fault: Fault, within: float = 180) -> None:
        began = time.monotonic()

        async def all_up() -> bool:
            async with httpx.AsyncClient() as client:
                alive = self.fleet.alive()
                answers = await asyncio.gather(*(health_of(client, s) for s in alive))
            return all(status == 200 for status, _ in answers)

        if await eventually(all_up, within):
            fault.notes.append(f"every instance healthy again {time.monotonic() - began:.1f} s after the restart")
        else:
            fault.problems.append(f"not every instance healthy {within:.0f} s after the restart")

    def _judge_health(self, fault: Fault, what: str, seen: dict[str, set[str]]) -> None:
        for name in sorted(self.fleet.instances):
            if name in self.fleet.down:
                continue
            if "reported" in seen.get(name, set()):
                fault.notes.append(f"{name}: /health reported {what} down (503)")
            else:
                fault.problems.append(f"{name}: /health never reported {what} down: {sorted(seen.get(name, ()))}")

    async def store_outage(self, fault: Fault) -> None:
        fault.target = "ferretdb"
        stop = asyncio.Event()
        await self.stack.stop_one("ferretdb")
        watching = asyncio.create_task(self._watch_health("mongodb", stop))
        await asyncio.sleep(self.plan.outage_seconds)
        stop.set()
        seen = await watching
        await self.stack.start_one("ferretdb")
        fault.notes.append(f"FerretDB down {self.plan.outage_seconds:g} s")
        self._judge_health(fault, "mongodb", seen)
        await self._recovered(fault)

    async def broker_restart(self, fault: Fault) -> None:
        fault.target = "kafka"
        self.publisher.open.clear()  # partners cannot publish either while the broker is down
        stop = asyncio.Event()
        await self.stack.stop_one("kafka")
        began = time.monotonic()
        watching = asyncio.create_task(self._watch_health("kafka", stop))
        try:
            # Down at least long enough for the health checks to notice (each may take a few seconds).
            await asyncio.sleep(4)
            await self.stack.start_one("kafka")
        finally:
            stop.set()
            seen = await watching
            self.publisher.open.set()
        fault.notes.append(f"broker down {time.monotonic() - began:.1f} s (stop, then start)")
        self._judge_health(fault, "kafka", seen)
        await self._recovered(fault)

    async def rebalance(self, fault: Fault) -> None:
        groups = {
            "registration-b": ("lindungi-registration", ENROLLMENT_REQUESTS.partitions),
            "reporting-b": ("lindungi-reporting", ENROLLMENT_OUTCOMES.partitions),
        }
        victims = [n for n in groups if n in self.fleet.instances]
        fault.target = " + ".join(victims)
        for name in victims:
            group, _ = groups[name]
            state, members = await group_assignment(self.stack.bootstrap, group)
            fault.notes.append(f"{group} before: {state}, partitions per member {[len(m) for m in members]}")
            self.fleet.kill(name)
        for name in victims:
            group, partitions = groups[name]

            async def taken_over(group: str = group, partitions: int = partitions) -> bool:
                state, members = await group_assignment(self.stack.bootstrap, group)
                return state == "Stable" and [len(m) for m in members] == [partitions]

            # The coordinator drops the dead member after its session timeout and rebalances.
            if await eventually(taken_over, 120, interval=1):
                fault.notes.append(f"{group} after: the survivor owns all {partitions} partitions")
            else:
                fault.problems.append(f"{group}: the survivor did not take every partition over in 120 s")
        before = len(self.progress.answered)
        goal = min(self.keys, before + 100)
        if await eventually(lambda: len(self.progress.answered) >= goal, 180):
            fault.notes.append(f"{len(self.progress.answered) - before} requests answered by the survivors alone")
        else:
            fault.problems.append("no progress with the survivors alone")
        for name in victims:
            await self.fleet.restart(name)


async def group_assignment(bootstrap: str, group: str) -> tuple[str, list[list[int]]]:
    """A consumer group's state and the partitions each member owns."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        _error, _group, state, _protocol_type, _protocol, members = response.groups[0][:6]
        owned = [
            sorted(p for _, partitions in ConsumerProtocolMemberAssignment.decode(m[4]).assignment for p in partitions)
            if m[4]
            else []
            for m in members
        ]
        return str(state), owned
    finally:
        await admin.close()


# --- Reading what the system holds -----------------------------------------------------------------------


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of the topic a group-less consumer subscribed to (all of them, once metadata came)."""
    await eventually(lambda: bool(consumer.assignment()), 30, interval=0.1)
    return sorted(tp for tp in consumer.assignment() if tp.topic == topic)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from the start to the end each partition has now."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, items in batch.items():
                records.extend(r for r in items if r.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        return {tp.partition: n for tp, n in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` not yet committed by `group` (what is left to do)."""
    ends = await end_offsets(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    done = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return sum(max(0, end - max(done.get(p, 0), 0)) for p, end in ends.items())


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def get_json(client: httpx.AsyncClient, url: str) -> tuple[Any, str]:
    response = await client.get(url, timeout=30)
    response.raise_for_status()
    return response.json(), response.text


# --- Verdict ------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the verification found, counted per place, with a few examples each."""

    lost: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    mismatches: Counter[str] = field(default_factory=Counter)
    leaks: Counter[str] = field(default_factory=Counter)  # the inputs' NIKs found in clear
    nik_shaped: Counter[str] = field(default_factory=Counter)  # any 16-digit run (hashes left out)
    problems: list[str] = field(default_factory=list)  # faults not ridden out: health, exits, recovery
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    checks: list[str] = field(default_factory=list)  # what was checked and what was seen, for the report

    def count(self, kind: Literal["lost", "doubled", "mismatches"], where: str, items: Iterable[str]) -> None:
        found = list(items)
        getattr(self, kind)[where] += len(found)
        self.examples[f"{kind}: {where}"].extend(found[:5])

    @property
    def clean(self) -> bool:
        return not (
            self.lost.total()
            or self.doubled.total()
            or self.mismatches.total()
            or self.leaks.total()
            or self.nik_shaped.total()
            or self.problems
        )


# --- Verification: outcomes and registration ----------------------------------------------------------------


def verify_outcomes(work: Workload, records: list[Any], verdict: Verdict) -> dict[str, Any]:
    """One outcome event id per request, of the expected kind and reasons. Returns each request's outcome."""
    by_key: dict[str, dict[str, Any]] = defaultdict(dict)
    for record in records:
        event = ev.outcome_adapter.validate_json(record.value)
        by_key[f"{event.data.partner_id}:{event.data.request_id}"][event.id] = event
    expected = work.expectations
    verdict.count("lost", "requests without an outcome", sorted(expected.keys() - by_key.keys()))
    verdict.count(
        "doubled",
        "requests with more than one outcome event id",
        [f"{k}: {sorted(ids)}" for k, ids in by_key.items() if len(ids) > 1],
    )
    verdict.count("mismatches", "outcomes for requests never sent", sorted(by_key.keys() - expected.keys()))
    wrong: list[str] = []
    for key, want in expected.items():
        for event in by_key.get(key, {}).values():
            kind = event.type.rsplit(".", 1)[1]
            if kind != want.outcome:
                wrong.append(f"{key}: {kind}, expected {want.outcome} {sorted(want.codes)}")
            elif kind == "rejected":
                codes = frozenset(r.code for r in event.data.reasons)
                if codes != want.codes or event.data.region_code != want.region:
                    wrong.append(f"{key}: {sorted(codes)} in {event.data.region_code}, expected "
                                 f"{sorted(want.codes)} in {want.region}")  # fmt: skip
    verdict.count("mismatches", "outcomes of the wrong kind or with the wrong reasons", wrong)
    copies = len(records) - sum(len(ids) for ids in by_key.values())
    verdict.checks.append(
        f"outcome topic: {len(records)} records, {len(by_key)} requests answered of {len(expected)} sent; "
        f"{copies} re-published copies carrying their original event id (allowed, consumers ignore them)"
    )
    return {key: next(iter(ids.values())) for key, ids in by_key.items()}


def verify_partner_topics(outcomes: dict[str, Any], copies: dict[str, list[Any]], verdict: Verdict) -> None:
    """Each registered partner's own outcome topic (production ACL profile) holds all its outcomes and nobody
    else's; a source registration does not know gets no topic (in production none exists for it)."""
    for topic, records in copies.items():
        partner = topic.removeprefix("lindungi.partner.").removesuffix(".outcomes.v1")
        events = [ev.outcome_adapter.validate_json(r.value) for r in records]
        foreign = [f"{topic}: {e.data.partner_id}:{e.data.request_id}" for e in events if e.data.partner_id != partner]
        verdict.count("mismatches", "another partner's outcome on a partner's topic", foreign)
        verdict.checks.append(f"{topic}: {len(events)} records, {len(foreign)} of another partner")
    if UNKNOWN_PARTNER in {t.removeprefix("lindungi.partner.").removesuffix(".outcomes.v1") for t in copies}:
        verdict.count("mismatches", "a topic for a partner registration does not know", [UNKNOWN_PARTNER])
    for partner in (p["partner_id"] for p in PARTNERS):
        topic = f"lindungi.partner.{partner}.outcomes.v1"
        mine = {e.id for k, e in outcomes.items() if k.startswith(partner + ":")}
        held = {ev.outcome_adapter.validate_json(r.value).id for r in copies.get(topic, [])}
        verdict.count("lost", "outcomes missing from the partner's own topic", sorted(mine - held))


async def _history_of(db: Any, pid: str) -> list[str]:
    """A participation's history entries and the request log's record of them: for a finding's report."""
    entries = []
    async for doc in db["history"].find({"participant_id": pid}):
        logged = await db["requests"].find_one({"_id": doc["_id"]})
        recorded = json.loads(logged["participant"]) if logged and logged.get("participant") else {}
        entries.append(
            f"{doc['_id']} v{doc['version']} {doc['action']} decided {doc['decided_at']}, logged "
            f"{logged.get('recorded_at') if logged else None} v{recorded.get('version')}"
        )
    return sorted(entries)


async def verify_registration(
    work: Workload,
    outcomes: dict[str, Any],
    mongo: AsyncMongoClient[dict[str, Any]],
    bootstrap: str,
    verdict: Verdict,
) -> list[str]:
    """Every valid request is a participant exactly once, in the expected state. Returns the raw documents
    as text for the scan at rest."""
    pid_of: dict[tuple[str, str], str] = {}
    for key, want in work.expectations.items():
        event = outcomes.get(key)
        if want.outcome == "registered" and isinstance(event, ev.ParticipantRegistered) and want.participation:
            pid_of[want.participation] = event.data.participant.participant_id
    db = mongo["lindungi_registration"]
    documents = [doc async for doc in db["participants"].find({})]
    stored = {doc["_id"]: doc for doc in documents}
    expected_ids = set(pid_of.values())
    verdict.count("lost", "valid requests that are no participant", sorted(expected_ids - stored.keys()))
    verdict.count("doubled", "participants no valid request asked for", sorted(stored.keys() - expected_ids))
    published: dict[str, list[str]] = defaultdict(list)  # what the outcome topic says happened to each
    for key, event in sorted(outcomes.items(), key=lambda item: item[1].time):
        participant = getattr(event.data, "participant", None)
        if participant is not None:
            published[participant.participant_id].append(f"{key} v{event.data.version} {event.type.rsplit('.', 1)[1]}")
    wrong_keys = [
        (pkey, pid)
        for pkey, pid in pid_of.items()
        if pid in stored and (stored[pid].get("status") == "ACTIVE") != work.participations[pkey].active
    ]
    intake: dict[bytes, list[str]] = defaultdict(list)
    if wrong_keys:  # where the participant's requests sit on the intake topic, to find the batches in the logs
        for r in await read_topic(bootstrap, ENROLLMENT_REQUESTS.name):
            intake[r.key].append(f"{r.partition}:{r.offset} {json.loads(r.value)['data']['request_id']}")
    wrong = [
        f"{pid}: stored v{stored[pid].get('version')} {stored[pid].get('status')}, outcomes: {published[pid]}, "
        f"history: {await _history_of(db, pid)}, intake: {intake[pkey[0].encode()]}"
        for pkey, pid in wrong_keys
    ]
    verdict.count("mismatches", "participants in the wrong state", wrong)
    history = await db["history"].count_documents({})
    log_entries = await db["requests"].count_documents({})
    if history != work.accepted:
        kind: Literal["lost", "doubled"] = "lost" if history < work.accepted else "doubled"
        verdict.count(kind, "history entries", [f"{history} entries for {work.accepted} accepted requests"])
    if log_entries != len(work.expectations):
        kind = "lost" if log_entries < len(work.expectations) else "doubled"
        verdict.count(kind, "request log entries", [f"{log_entries} for {len(work.expectations)} requests"])
    active = sum(doc.get("status") == "ACTIVE" for doc in documents)
    verdict.checks.append(
        f"registration: {len(stored)} participants ({active} active) for {len(work.participations)} valid "
        f"enrollments ({sum(p.active for p in work.participations.values())} active at the end); "
        f"{history} history entries, {log_entries} request-log entries"
    )
    return [json.dumps(doc, default=str) for doc in documents]


# --- Verification: reporting --------------------------------------------------------------------------------


async def verify_reporting(
    work: Workload, bootstrap: str, fleet: Fleet, verdict: Verdict, within: float = 90
) -> list[str]:
    """Every region's latest snapshot on the compacted topic and every figure each reporting instance
    serves equal the independent computation. Returns the API's answers for the NIK scan."""
    want = expected_figures(work)

    async def snapshots() -> tuple[dict[str, Figures], list[str]]:
        latest: dict[str, Any] = {}
        for record in await read_topic(bootstrap, REGION_AGGREGATES.name):
            latest[record.key.decode()] = json.loads(record.value)["data"]
        got = {code: observed_figures(data) for code, data in latest.items()}
        return got, differences(got, want)

    # Snapshots are coalesced and published once a second: give the last round time to land.
    deadline = time.monotonic() + within
    got, diff = await snapshots()
    while diff and time.monotonic() < deadline:
        await asyncio.sleep(2)
        got, diff = await snapshots()
    verdict.count("mismatches", "regions whose published snapshot differs from the inputs", diff)
    verdict.checks.append(f"aggregates topic: {len(got)} regions' latest snapshots, {len(diff)} differ")

    texts: list[str] = []
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient() as client:
        for name in fleet.of("reporting"):
            service = fleet.instances[name]
            listed, text = await get_json(client, f"{service.url}/regions")
            texts.append(text)
            codes = sorted({r["region_code"] for r in listed["regions"]} | want.keys())

            async def one(code: str, base: str = service.url) -> tuple[str, Any, str]:
                async with gate:
                    response = await client.get(f"{base}/regions/{code}", timeout=30)
                    return code, response.json() if response.status_code == 200 else {}, response.text

            answers = await asyncio.gather(*(one(code) for code in codes))
            texts += [text for _, _, text in answers]
            served = {code: observed_figures(body) for code, body, _ in answers if body}
            diff = differences(served, want)
            verdict.count("mismatches", f"regions {name} serves differently from the inputs", diff)
            verdict.checks.append(f"reporting API of {name}: {len(served)} regions, {len(diff)} differ")
            for path in ("/rankings?scope=national", "/rankings?scope=32", "/regions.csv"):
                texts.append((await client.get(f"{service.url}{path}", timeout=30)).text)
    return texts


# --- Verification: notification -----------------------------------------------------------------------------

Intent = tuple[str, str, str, str]  # (source event id, audience, recipient, channel)


def expected_intents(work: Workload, outcomes: dict[str, Any]) -> dict[Intent, str]:
    """Who must hear about each outcome, from the inputs and this run's subscriptions: intent -> the status
    the ledger must end with (a partner without a webhook cannot be told: `failed`, visibly)."""
    intents: dict[Intent, str] = {}
    for key, want in work.expectations.items():
        event = outcomes.get(key)
        if event is None:
            continue
        kind = KIND_OF[want.outcome]
        if want.outcome == "rejected":
            partner = key.split(":", 1)[0]
            intents[(event.id, "partner", partner, "WEBHOOK")] = "sent" if partner in PARTNER_SECRETS else "failed"
            scopes: tuple[str, ...] = (want.region,) if want.region else ()
        else:
            email, phone = want.contact
            if email:
                intents[(event.id, "worker", email, "EMAIL")] = "sent"
            if phone:
                intents[(event.id, "worker", phone, "SMS")] = "sent"
            scopes = want.scopes
        for s in SUBSCRIBERS:
            if kind in s.kinds and any(_under(code, s.scope) for code in scopes):
                intents[(event.id, "subscriber", s.subscription_id, s.channel.value)] = "sent"
    return intents


def _intent_of(doc: dict[str, Any]) -> Intent:
    recipient = doc["address"] if doc["audience"] == "worker" else doc["recipient_id"]
    return (doc["source_event_id"], doc["audience"], str(recipient), doc["channel"])


def _address_of(doc: dict[str, Any]) -> str:
    """Where a delivery must arrive, as the receivers record it."""
    if doc["channel"] == "WEBHOOK":
        return httpx.URL(doc["address"]).path
    return str(doc["address"])


async def verify_notification(  # noqa: PLR0913, PLR0917 - the places a notification shows up
    work: Workload,
    outcomes: dict[str, Any],
    mongo: AsyncMongoClient[dict[str, Any]],
    mail: MailSink,
    web: WebReceiver,
    reports: list[Any],
    verdict: Verdict,
) -> list[str]:
    """Every intent once in the ledger, every one delivered and received once (by idempotency key), every
    settled delivery reported. Returns the ledger and what the receivers got, for the NIK scan."""
    want = expected_intents(work, outcomes)
    documents = [doc async for doc in mongo["lindungi_notification"]["deliveries"].find({})]
    ledger: dict[Intent, list[dict[str, Any]]] = defaultdict(list)
    for doc in documents:
        ledger[_intent_of(doc)].append(doc)
    verdict.count("lost", "notification intents missing from the ledger", [str(i) for i in want if i not in ledger])
    verdict.count(
        "doubled",
        "notification intents in the ledger more than once",
        [str(i) for i, d in ledger.items() if len(d) > 1],
    )
    verdict.count("mismatches", "ledger entries nobody should get", [str(i) for i in ledger if i not in want])
    unsettled = [
        f"{i}: {docs[0]['status']} after {docs[0]['attempts']} attempts ({docs[0].get('last_error')})"
        for i, docs in ledger.items()
        if i in want and docs[0]["status"] != want[i]
    ]
    verdict.count("lost", "notifications not delivered", unsettled)

    receipts = [*mail.receipts, *web.receipts]
    received: dict[str, list[Receipt]] = defaultdict(list)
    for receipt in receipts:
        received[receipt.key].append(receipt)
    sent = {doc["_id"]: doc for doc in documents if doc["status"] == "sent"}
    verdict.count("lost", "sent notifications the recipient never got", sorted(sent.keys() - received.keys()))
    verdict.count(
        "mismatches", "received notifications the ledger does not know", sorted(received.keys() - sent.keys())
    )
    misdirected = [
        f"{key}: {r.channel.value} to {r.recipient}"
        for key, got in received.items()
        if key in sent
        for r in got
        if (r.channel.value, r.recipient) != (sent[key]["channel"], _address_of(sent[key]))
    ]
    verdict.count("mismatches", "notifications received by the wrong recipient or channel", misdirected)

    reported = {e.data.delivery_id for e in reports}
    settled = {doc["_id"] for doc in documents if doc["status"] in {"sent", "failed"}}
    verdict.count("lost", "settled deliveries never reported on the deliveries topic", sorted(settled - reported))
    resent = len(receipts) - len(received)
    by_channel = Counter(r.channel.value for r in receipts)
    verdict.checks.append(
        f"notification: {len(want)} intents expected, {len(documents)} in the ledger "
        f"({Counter(d['status'] for d in documents)}); {len(receipts)} receipts {dict(by_channel)} for "
        f"{len(received)} idempotency keys: {resent} resent after a crash, deduplicated by key"
    )
    return [json.dumps(doc, default=str) for doc in documents] + [r.text for r in receipts]


# --- Verification: personal data ----------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d{15,}")
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")  # keyed hashes: hex may hold a run of 16 decimal digits by chance


def masked(text: str) -> str:
    """A finding as the report may show it: the NIK found is masked there too."""
    return re.sub(r"\d{15,17}", lambda m: mask_nik(m.group()), text)


def scan(texts: Iterable[str], niks: frozenset[str]) -> tuple[int, int, list[str]]:
    """(input NIKs found in clear, 16-digit runs outside hashes, examples). The NIKs of the inputs include
    the invalid ones (15 to 17 digits) that partners sent."""
    found = shaped = 0
    examples: list[str] = []
    for text in texts:
        for run in _DIGIT_RUN.finditer(text):
            digits = run.group()
            hits = {
                digits[i : i + n] for n in (15, 16, 17) for i in range(len(digits) - n + 1) if digits[i : i + n] in niks
            }
            if hits:
                found += 1
                examples.append(masked(text[max(0, run.start() - 80) : run.end() + 40]))
        shaped += len(NIK_PATTERN.findall(_HEX_RUN.sub("#", text)))
    return found, shaped, examples[:3]


def scan_into(verdict: Verdict, where: str, texts: Iterable[str], niks: frozenset[str]) -> None:
    found, shaped, examples = scan(texts, niks)
    verdict.leaks[where] += found
    verdict.nik_shaped[where] += shaped
    verdict.examples[f"NIK in clear: {where}"].extend(examples)
    verdict.checks.append(f"NIK scan, {where}: {found} input NIKs in clear, {shaped} other 16-digit runs")


def record_text(record: Any) -> str:
    headers = " ".join(f"{k}={v.decode('utf-8', 'replace')}" for k, v in record.headers or ())
    key = record.key.decode("utf-8", "replace") if record.key else ""
    return f"{key} {headers} {record.value.decode('utf-8', 'replace') if record.value else ''}"


# --- Settling -----------------------------------------------------------------------------------------------

CONSUMER_GROUPS = (
    ("lindungi-registration", ENROLLMENT_REQUESTS.name),
    ("lindungi-reporting", ENROLLMENT_OUTCOMES.name),
    ("lindungi-notification", ENROLLMENT_OUTCOMES.name),
    ("lindungi-notification-aggregates", REGION_AGGREGATES.name),
)


async def settle(  # noqa: C901, PLR0913, PLR0917 - what has to come to rest
    work: Workload,
    bootstrap: str,
    fleet: Fleet,
    progress: Progress,
    mongo: AsyncMongoClient[dict[str, Any]],
    within: float,
) -> list[str]:
    """Wait (with deadlines, never a fixed sleep) until everything the stream set off has come to rest:
    every request answered, every consumer group caught up, reporting's read model at the end of the
    outcome topic, the notification ledger without pending or unreported deliveries. What did not come to
    rest is returned; the verification then counts what is missing."""
    notes: list[str] = []
    keys = set(work.expectations)
    began = time.monotonic()
    if not await eventually(lambda: keys <= progress.answered, within):
        notes.append(f"{len(keys - progress.answered)} requests unanswered after {within:.0f} s")

    async def caught_up(group: str, topic: str) -> bool:
        return await lag(bootstrap, group, topic) == 0

    for group, topic in CONSUMER_GROUPS[:1]:
        if not await eventually(lambda g=group, t=topic: caught_up(g, t), 120, interval=1):
            notes.append(f"{group} still behind on {topic}")
    ends = {
        f"{ENROLLMENT_OUTCOMES.name}:{p}": n
        for p, n in (await end_offsets(bootstrap, ENROLLMENT_OUTCOMES.name)).items()
        if n
    }

    async def reporting_at_end() -> bool:
        async with httpx.AsyncClient() as client:
            for name in fleet.of("reporting"):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    national, _ = await get_json(client, f"{fleet.instances[name].url}/regions/ID")
                    if {k: v for k, v in national["source_offsets"].items() if v} == ends:
                        continue
                return False
        return True

    if not await eventually(reporting_at_end, 180, interval=1):
        notes.append("a reporting instance's read model did not reach the end of the outcome topic")
    deliveries = mongo["lindungi_notification"]["deliveries"]

    async def ledger_at_rest() -> bool:
        pending = await deliveries.count_documents({"status": "pending"})
        unreported = await deliveries.count_documents({"reported": False})
        return pending == 0 and unreported == 0 and await caught_up("lindungi-notification", ENROLLMENT_OUTCOMES.name)

    if not await eventually(ledger_at_rest, 240, interval=1):
        notes.append("the notification ledger still has pending or unreported deliveries")
    for group, topic in CONSUMER_GROUPS[1:]:
        if not await eventually(lambda g=group, t=topic: caught_up(g, t), 120, interval=1):
            notes.append(f"{group} still behind on {topic}")
    notes.append(f"settled {time.monotonic() - began:.0f} s after the last request was published")
    return notes


# --- The report ---------------------------------------------------------------------------------------------


@dataclass
class Report:
    plan: Plan
    command: str
    started: datetime
    seconds: float
    work: Workload
    faults: list[Fault]
    verdict: Verdict
    resent_chunks: int
    settle_notes: list[str]
    commit: str = "unknown"  # the checkout the services ran from, read when the run began

    def rows(self) -> list[tuple[str, str]]:
        v = self.verdict
        kinds = Counter(f.kind for f in self.faults)
        targets = ", ".join(f.target for f in self.faults if f.kind == "kill -9")
        faults = ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items()))
        distinct = len(self.work.expectations)
        return [
            ("faults injected", f"{len(self.faults)}: {faults} (killed: {targets})"),
            (
                "requests",
                (
                    f"{len(self.work.records)} records published, {distinct} distinct requests "
                    f"({self.work.accepted} to accept, {distinct - self.work.accepted} to reject)"
                ),
            ),
            ("lost", str(v.lost.total())),
            ("doubled", str(v.doubled.total())),
            ("mismatches", str(v.mismatches.total())),
            ("NIK leaks", f"{v.leaks.total()} (other 16-digit runs: {v.nik_shaped.total()})"),
            ("faults not ridden out", str(len(v.problems))),
            ("duration", f"{self.seconds / 60:.1f} min"),
        ]

    def markdown(self) -> str:
        table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in self.rows())])
        faults = "\n".join(
            [
                "| # | fault | target | at (s) | in flight | lasted (s) | observed |",
                "|---|---|---|---|---|---|---|",
                *(
                    f"| {i} | {f.kind} | {f.target} | {f.at_seconds:g} | {f.published - f.answered} "
                    f"| {f.seconds:g} | {'; '.join(f.problems + f.notes)} |"
                    for i, f in enumerate(self.faults, start=1)
                ),
            ]
        )
        mix = "\n".join(f"| {kind} | {n} |" for kind, n in sorted(self.work.kinds.items()))
        checks = "\n".join(f"- {c}" for c in [*self.verdict.checks, *self.settle_notes])
        findings = "\n".join(
            f"- {where}: {'; '.join(items)}" for where, items in sorted(self.verdict.examples.items()) if items
        )
        findings += "".join(f"\n- {p}" for p in self.verdict.problems)
        return DOC_TEMPLATE.format(
            table=table,
            faults=faults,
            mix=mix,
            checks=checks,
            findings=findings or "none",
            plan=self.plan.describe(),
            command=self.command,
            date=self.started.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB"),
            machine=machine(),
            commit=self.commit,
            reduced=REDUCED.describe(),
            full=FULL.describe(),
        )

    def text(self) -> str:
        lines = [f"{k:>22}: {v}" for k, v in self.rows()]
        lines += ["", *self.verdict.checks, *self.settle_notes]
        lines += [f"fault {f.kind} {f.target}: {'; '.join(f.problems + f.notes)}" for f in self.faults]
        lines += [f"{where}: {items}" for where, items in sorted(self.verdict.examples.items()) if items]
        lines += self.verdict.problems
        return "\n".join(lines)


def machine() -> str:
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs{memory}, Python {platform.python_version()}"
    )


def commit() -> str:
    """The checkout's commit, marked `-dirty` when tracked files differ from it (the run is of those)."""
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False).returncode != 0  # noqa: S607
    return (result.stdout.strip() or "unknown") + ("-dirty" if changed else "")


# --- A run --------------------------------------------------------------------------------------------------


async def heartbeat(publisher: Publisher, progress: Progress, work: Workload) -> None:
    while True:
        await asyncio.sleep(15)
        log.info(
            "%d/%d records published, %d/%d requests answered",
            publisher.published,
            len(work.records),
            len(progress.answered),
            len(work.expectations),
        )


async def run(plan: Plan, workdir: Path, *, command: str = "") -> Report:  # noqa: PLR0915 - the run, in order
    """Everything from an empty private stack to the verdict; the stack is reset at the end whatever happens."""
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    regions = load_regions()
    work = build_workload(plan, datetime.now(WIB).date(), regions)
    stack = PrivateStack(workdir / "stack")
    mail, web = MailSink(), WebReceiver()
    fleet: Fleet | None = None
    tasks: list[asyncio.Task[None]] = []
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    started, began, checkout = datetime.now(UTC), time.monotonic(), commit()
    try:
        await stack.start()
        mail.start()
        web.start()
        fleet = Fleet.create(plan, stack, workdir, mail, web)
        await fleet.start_all()
        # A bound on every query: a store that stops answering must fail the run, not hang it.
        mongo = AsyncMongoClient(stack.mongodb_url, tz_aware=True, timeoutMS=120_000)
        publisher = Publisher(stack.bootstrap, work.records, plan.rate)
        progress = Progress(stack.bootstrap)
        chaos = Chaos(plan, stack, fleet, publisher, progress, len(work.expectations))
        tasks = [
            asyncio.create_task(t)
            for t in (fleet.watch(), progress.run(), publisher.run(), heartbeat(publisher, progress, work))
        ]
        await chaos.run()
        await publisher.done.wait()
        log.info("faults done, stream published; waiting for everything to settle")
        notes = await settle(work, stack.bootstrap, fleet, progress, mongo, plan.settle_seconds)
        if publisher.resent_chunks:
            notes.append(f"{publisher.resent_chunks} chunks of requests published again after a send failed")

        log.info("settled: %s; verifying", "; ".join(notes))
        verdict = Verdict()
        for fault in chaos.faults:
            verdict.problems += [f"{fault.kind} {fault.target}: {p}" for p in fault.problems]
        records = await read_topic(stack.bootstrap, ENROLLMENT_OUTCOMES.name)
        outcomes = verify_outcomes(work, records, verdict)
        topics = [t for t in await list_topics(stack.bootstrap) if not t.startswith("__")]
        copies = {t: await read_topic(stack.bootstrap, t) for t in topics if t.startswith("lindungi.partner.")}
        verify_partner_topics(outcomes, copies, verdict)
        at_rest = await verify_registration(work, outcomes, mongo, stack.bootstrap, verdict)
        api_texts = await verify_reporting(work, stack.bootstrap, fleet, verdict)
        reports = [
            ev.delivery_adapter.validate_json(r.value)
            for r in await read_topic(stack.bootstrap, NOTIFICATION_DELIVERIES.name)
        ]
        notified = await verify_notification(work, outcomes, mongo, mail, web, reports, verdict)
        letters = await read_topic(stack.bootstrap, DEAD_LETTERS.name)
        verdict.count("mismatches", "dead letters for records that were all readable", [str(r.offset) for r in letters])
        for group, topic in CONSUMER_GROUPS:
            left = await lag(stack.bootstrap, group, topic)
            verdict.checks.append(f"consumer lag of {group} on {topic}: {left}")
            if left:
                verdict.count("mismatches", "consumer lag not back to zero", [f"{group}: {left}"])

        tasks[0].cancel()  # from here on, services stop on purpose
        fleet.stop_all()
        verdict.problems += fleet.exits
        niks = frozenset(work.niks)
        texts = [
            record_text(r)
            for t in topics
            if t != ENROLLMENT_REQUESTS.name
            for r in await read_topic(stack.bootstrap, t)
        ]
        scan_into(verdict, f"topics other than intake ({len(topics) - 1})", texts, niks)
        scan_into(verdict, "service logs", [s.logs() for s in fleet.instances.values()], niks)
        scan_into(verdict, "notifications (ledger, e-mails, webhooks, SMS)", notified, niks)
        scan_into(verdict, "reporting API", api_texts, niks)
        scan_into(verdict, "participants collection at rest", at_rest, niks)
        return Report(
            plan,
            command,
            started,
            time.monotonic() - began,
            work,
            chaos.faults,
            verdict,
            publisher.resent_chunks,
            notes,
            checkout,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if mongo is not None:
            await mongo.close()
        if fleet is not None:
            fleet.stop_all()
        mail.stop()
        web.stop()
        stack.reset()


async def _until_terminated(work: Awaitable[Report]) -> Report:
    """SIGTERM (a CI timeout, `timeout`) cancels the run, so the private stack and the services are still
    stopped and reset by `run`'s cleanup."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()

    def terminate() -> None:
        loop.add_signal_handler(signal.SIGTERM, lambda: None)  # a second one must not cut the cleanup short
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    return await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help=f"the full run: {FULL.describe()}")
    parser.add_argument("--seed", type=int, help="another seed for the stream and the fault schedule")
    parser.add_argument("--workdir", type=Path, help="where logs go (default .local/reliability/<run>)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/reliability.md after a full run")
    args = parser.parse_args(argv)
    plan = FULL if args.full else REDUCED
    if args.seed is not None:
        plan = replace(plan, seed=args.seed)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    workdir = args.workdir or ROOT / ".local" / "reliability" / f"{plan.name}-{stamp}"
    command = "python -m tests.e2e.reliability" + (" --full" if args.full else "")
    if args.seed is not None:
        command += f" --seed {args.seed}"
    # The harness's own Kafka clients complain loudly while the broker restarts; that is expected.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    log.setLevel(logging.INFO)
    report = asyncio.run(_until_terminated(run(plan, workdir, command=command)))
    # Kept with the logs so the summary can be rendered again (`Report.markdown`) without a new run.
    (workdir / "report.pickle").write_bytes(pickle.dumps(report))
    print(report.text())  # noqa: T201 - the command's output
    print(f"logs: {workdir}")  # noqa: T201
    if args.full and not args.no_docs:
        DOC.write_text(report.markdown(), encoding="utf-8")
        print(f"summary written to {DOC.relative_to(ROOT)}")  # noqa: T201
    return 0 if report.verdict.clean else 1


DOC_TEMPLATE = """\
# Reliability and security

<!-- Generated by `python -m tests.e2e.reliability --full` from the template in tests/e2e/reliability.py:
     edit the template there, not this file. -->

The non-negotiables are that no request is lost or counted twice, that every figure is right, that every
notification reaches its recipient once, and that a NIK never appears in clear outside the intake topic.
This suite tries hard to break them, with real Kafka, the real MongoDB-protocol server and the services as
separate processes, as in production.

## Last full run

{table}

`{command}`, {date}, commit `{commit}`, on {machine}. Plan: {plan}.

### Faults

"In flight" is how many requests had been published but not yet answered when the fault struck.

{faults}

### What was checked

{checks}

### Findings

{findings}

### The stream

| request | records |
|---|---|
{mix}

## How it works

**A private stack.** A broker restart and a store outage would break every other test sharing the session's
servers, so a run starts its own Kafka and FerretDB (`deploy/local/stack` with `LINDUNGI_STATE_DIR` and
ports of its own, picked free at run time) and resets it at the end. The services run as
`python -m services.<name>` with the catalogue's topic names, random `LINDUNGI_NIK_HASH_SECRET` and
`LINDUNGI_SEAL_KEY`, registration's partners from a seed file and its production-profile copies of each
outcome on the partner's own topic, and notification pointed at an SMTP server (aiosmtpd) and an HTTP
receiver the harness runs for workers' e-mail, the SMS gateway, partners' webhooks and a webhook, an e-mail
and an SMS subscriber. Registration and reporting run as two instances each in one consumer group.

**The stream.** Synthetic enrollment requests (`services.registration.domain.synthetic.generate`, seeded;
a share invalid, each labelled with the reason codes the rules must give, a share re-sent by the partner),
sent by three partners: one allowed everything in the generated provinces, one allowed only Kota Bogor, PU
and BPU and three funding sources, and one registration does not know. Lifecycle requests follow some
enrollments: terminations, reactivations, a second termination, a reactivation of an active participant, a
termination that overtakes its enrollment, and re-sends of these. Requests are keyed by NIK and published
at a steady rate, so a worker's requests arrive in order and the stream is flowing when the faults land.

**Faults**, at random moments while the stream is published, one after the other:
- `kill -9` of a random service instance, each service at least once, restarted after up to 3 s;
- a broker restart (`stack stop-one kafka`, `start-one kafka`); partners hold their requests meanwhile;
- a store outage: FerretDB stopped for the plan's time, then started; no service is restarted by hand;
- a rebalance: the second instance of registration and of reporting killed and left down until the
  consumer group shows the survivor owning every partition and the survivors alone have answered more
  requests; then started again.
During the outage and the broker restart every live instance's `/health` is polled: each must answer 503
naming the dependency that is down, and 200 again afterwards.

**The independent computation.** The harness follows the stream in order (per worker, the order Kafka keeps)
with its own model of participations and partners' authority, so it knows for each request whether it must
be registered, terminated, reactivated or rejected, and with exactly which reason codes (the generator's
labels plus the partner-authority and lifecycle codes). From the final participations it computes every
region's figures (active, by segment, category, program, funding source, sex and age band, monthly
contributions by payer and by funding source, enrollment/termination/reactivation totals, rejections by
reason and partner), rolled up kecamatan, regency/city, province, nation. Contributions are priced with
registration's rate table (`contributions.calculate`), the one piece of domain logic borrowed. From the
outcome event ids and the subscriptions it computes every notification intent.

**What is compared**, after everything has settled (every request answered, every consumer group at the end
of its topics, reporting's read model at the end of the outcome topic, no pending delivery):
- *lost*: a request without an outcome; a valid request that is no participant; a history or request-log
  entry missing; a notification intent missing from the ledger, not delivered, or never received; an
  outcome missing from the partner's own topic; a settled delivery never reported;
- *doubled*: a request with two outcome event ids (a re-published copy with the same event id is allowed,
  and counted); a participant or history entry too many; an intent in the ledger twice. A webhook, SMS or
  e-mail received twice with the same idempotency key counts once (receivers deduplicate by key, as
  partners are asked to) and the resends are reported;
- *mismatches*: an outcome of the wrong kind or with the wrong reasons or region; a participant in the
  wrong state; a region whose latest snapshot on the compacted topic, or whose figures in either reporting
  instance's API, differ from the computation; a notification to someone who should not get it or at the
  wrong address; another partner's outcome on a partner's topic; a dead letter for a readable record;
  consumer lag left;
- *NIK leaks*: every NIK of the inputs (valid or not) searched in every topic but intake, every service log
  line, every notification (ledger, e-mails, webhooks, SMS), every answer of the reporting API and the
  participants collection at rest; any other 16-digit run is counted as well (keyed hashes left out);
- *faults not ridden out*: a health endpoint that did not report the outage, an instance that did not
  recover, an instance that died without being killed.

The run fails on any of these. `make test` runs the reduced plan (`tests/e2e/test_reliability.py`); the bad
input corpus and partner authority are in `tests/e2e/test_bad_input.py`; the production ACLs themselves are
checked in `tests/unit/deploy/test_acls.py`.

## Running it

```sh
.venv/bin/python -m tests.e2e.reliability           # reduced: {reduced}
.venv/bin/python -m tests.e2e.reliability --full    # full: {full}; writes this file
```

Logs of each run stay in `.local/reliability/<run>/`. `--seed N` replays another stream and schedule.
"""


if __name__ == "__main__":
    sys.exit(main())
