"""The fiscal year rolls over on 1 January (WIB): the new year's ledger carries the participations active when
it began for all twelve months, and a termination in the new year releases from that. Against the real MongoDB
server, through registration's own store and budget step, with the clock of each decision set by its context.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from pymongo import AsyncMongoClient

from services.registration.budgeting import Budgeting
from services.registration.budgets import MongoBudgets
from services.registration.domain.decisions import decide
from services.registration.domain.nik import format_nik
from services.registration.domain.participation import Context, Decision, Partner
from services.registration.store import MongoRegistrationStore
from shared import events as ev
from shared.crypto import Sealer
from shared.messaging import Keyed
from shared.regions import load_regions

PACKAGE = 16_800  # BPU vulnerable package, all of it paid by the APBD
PARTNER = Partner(
    partner_id="dinsos-bogor",
    name="Dinas Sosial Kota Bogor",
    regions=frozenset({"32.71"}),
    segments=frozenset({ev.Segment.BPU}),
    funding_sources=frozenset({ev.FundingSource.APBD}),
)


def _context(today: date) -> Context:
    now = datetime(today.year, today.month, today.day, 3, tzinfo=UTC)
    return Context(today=today, regions=load_regions(), nik_secret=b"test-secret", now=now)


def _nik(serial: int) -> str:
    return format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, serial)


def _enroll(serial: int, start: date) -> ev.EnrollmentRequested:
    data = ev.EnrollmentRequest(
        request_id=f"e-{serial}",
        worker=ev.Worker(
            nik=_nik(serial),
            full_name="Siti Aminah",
            birth_date=date(1990, 6, 5),
            sex=ev.Sex.FEMALE,
            domicile_kecamatan="32.71.01",
        ),
        region_code="32.71",
        segment=ev.Segment.BPU,
        category=ev.Category.VULNERABLE,
        programs=[ev.Program.JKK, ev.Program.JKM],
        declared_income=1_000_000,
        funding_source=ev.FundingSource.APBD,
        coverage_start=start,
    )
    return ev.EnrollmentRequested(source="partner/dinsos-bogor", data=data)


async def _nothing(_: Sequence[Keyed]) -> None:
    return None


async def _run(budgeting: Budgeting, store: MongoRegistrationStore, decisions: list[Decision], ctx: Context) -> None:
    """What the service does with a batch: admit, log, apply, settle."""
    admitted, entered = await budgeting.admit(decisions, ctx)
    assert not await store.record(admitted)
    await store.apply(admitted)
    await budgeting.settle(admitted, entered, ctx)


async def test_the_new_year_carries_the_active_participations_and_releases_from_them(
    mongo: AsyncMongoClient[dict[str, Any]], unique: str, service_env: dict[str, str]
) -> None:
    database = f"registration_{unique}"
    sealer = Sealer(service_env["LINDUNGI_SEAL_KEY"])
    store = MongoRegistrationStore(mongo, database, sealer)
    budgets = MongoBudgets(mongo, database, sealer)
    await store.create_indexes()
    budgeting = Budgeting(budgets, _nothing, "budget", "requests")

    december = _context(date(2030, 12, 10))
    enrolled = [decide(_enroll(n, date(2030, 12, 1)), PARTNER, None, december) for n in (1, 2)]
    await _run(budgeting, store, enrolled, december)
    old = (await budgets.load(["32.71|2030|APBD"]))["32.71|2030|APBD"]
    assert (old.reserved, old.workers, old.pending) == (2 * PACKAGE, 2, {})

    january = _context(date(2031, 1, 2))
    current = await store.participations([d.participant.participant_id for d in enrolled if d.participant])
    first = current[enrolled[0].participant.participant_id]  # type: ignore[union-attr]
    stop = ev.TerminationRequested(
        source="partner/dinsos-bogor",
        data=ev.TerminationRequest(
            request_id="t-1",
            nik=_nik(1),
            segment=ev.Segment.BPU,
            reason=ev.TerminationReason.MOVED,
            effective_date=date(2031, 1, 15),
        ),
    )
    ended = decide(stop, PARTNER, first, january)
    assert ended.charge is not None
    assert ended.charge.amount == -11 * PACKAGE  # February to December 2031: January stays due
    await _run(budgeting, store, [ended], january)

    new = (await budgets.load(["32.71|2031|APBD"]))["32.71|2031|APBD"]
    # Carried: two workers for twelve months; released: one worker's last eleven.
    assert new.opened
    assert (new.reserved, new.workers) == (24 * PACKAGE - 11 * PACKAGE, 1)
    assert new.by_month["2031-01"] == 2 * PACKAGE
    assert new.by_month["2031-12"] == PACKAGE
    await mongo.drop_database(database)
