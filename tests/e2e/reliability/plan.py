"""What a run does: how hard it tries, the partners and subscribers it seeds, who sends which request."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared import events as ev
from shared.reasons import ReasonCode
from shared.regions import NATIONAL_CODE, Regions

if TYPE_CHECKING:
    from collections.abc import Iterable


WIB = ZoneInfo("Asia/Jakarta")  # registration's "today" and reporting's business date


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
    # One of each of the harder faults (see chaos.py): the broker hung with SIGSTOP, the broker killed with
    # kill -9, the store's disk full, a service instance's clock stepped.
    broker_pause: bool = False
    broker_kill: bool = False
    disk_full: bool = False
    clock_jump: bool = False
    # The soak: this many faults drawn at random among every class (seeded), instead of the fixed list above.
    random_faults: int = 0
    pause_seconds: tuple[float, float] = (5, 30)  # how long the broker stays hung (SIGSTOP .. SIGCONT)
    hold_seconds: tuple[float, float] = (5, 15)  # how long a full disk or a stepped clock stays so
    store_size: str = "1g"  # the tmpfs the store's data lives on, filled for the disk-full fault
    # Every fault must be ridden out within this: every instance healthy and every request published before
    # the fault was cleared answered.
    recover_seconds: float = 180
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

    @property
    def needs_store_mount(self) -> bool:
        return self.disk_full or self.random_faults > 0

    @property
    def needs_clock(self) -> bool:
        return self.clock_jump or self.random_faults > 0

    def describe(self) -> str:
        if self.random_faults:
            low, high = self.pause_seconds
            return (
                f"{self.requests} enrollment requests at {self.rate:g}/s; {self.random_faults} faults drawn at "
                f"random (seed {self.seed}): kill -9 of any instance, broker hung {low:g}-{high:g} s (SIGSTOP), "
                "broker kill -9, broker restart, FerretDB stopped, FerretDB's disk full, a clock stepped, rebalance"
            )
        faults = [f"{self.kills} x kill -9"]
        if self.broker_restart:
            faults.append("broker restart")
        if self.broker_pause:
            faults.append(f"broker hung {self.pause_seconds[0]:g}-{self.pause_seconds[1]:g} s (SIGSTOP)")
        if self.broker_kill:
            faults.append("broker kill -9")
        faults.append(f"FerretDB stopped {self.outage_seconds:g} s")
        if self.disk_full:
            faults.append("FerretDB's disk full")
        if self.clock_jump:
            faults.append("a clock stepped")
        if self.rebalance:
            faults.append("rebalance (one instance of each group killed)")
        return f"{self.requests} enrollment requests at {self.rate:g}/s; " + ", ".join(faults)


REDUCED = Plan(
    "reduced",
    requests=2000,  # long enough a stream at this rate that it still flows while most faults land
    kills=3,
    outage_seconds=5,
    broker_restart=True,
    rebalance=True,
    rate=30,
    broker_pause=True,
    broker_kill=True,
    disk_full=True,
    clock_jump=True,
    pause_seconds=(5, 6),
    hold_seconds=(3, 4),
)
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
# At least 200,000 distinct requests (lifecycle requests come on top of the enrollments) and 100 faults.
SOAK = Plan(
    "soak",
    requests=195_000,
    kills=0,
    outage_seconds=15,
    broker_restart=True,
    rebalance=True,
    # What two instances of each service sustain on 2 shared cores with faults every 40 s or so; the full
    # run's 110/s holds for minutes on an idle machine, not for an hour of faults (see docs/reliability.md).
    rate=60,
    random_faults=100,
    sweep_seconds=10,
    settle_seconds=3600,
    store_size="6g",
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


def fraction(text: str, salt: str) -> float:
    """A stable number in [0, 1) for a request id: the same request (and its re-sends) always draw the same."""
    return zlib.crc32(f"{salt}:{text}".encode()) / 2**32


def partner_for(request_id: str, plan: Plan) -> str:
    """Which partner sends a request: most the main partner, some a partner with little authority, a few
    one that registration does not know. Fixed by the request id, so a re-send comes from the same one."""
    draw = fraction(request_id, "partner")
    if draw < plan.unknown_share:
        return UNKNOWN_PARTNER
    return LIMITED_PARTNER if draw < plan.unknown_share + plan.limited_share else MAIN_PARTNER


def under(code: str, scope: str) -> bool:
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
    if code not in regions or not any(under(code, scope) for scope in partner["regions"]):
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
