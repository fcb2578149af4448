"""Hand-built budget events for the notification tests: what registration would publish about a budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared import events as ev
from tests.unit.notification.samples import NIK_MASKED

START = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)


def key(region_code: str = "32.71", source: ev.BudgetSource = ev.BudgetSource.APBD) -> ev.BudgetKey:
    return ev.BudgetKey(region_code=region_code, fiscal_year=2027, funding_source=source)


def position(  # noqa: PLR0913 - every fact of a position, each with a default
    sequence: int,
    reserved: int,
    allocation: int | None = 1_000_000,
    version: int = 1,
    *,
    budget: ev.BudgetKey | None = None,
    holds_waiting: int = 0,
    holds_waiting_amount: int = 0,
    workers: int | None = None,
) -> ev.BudgetPosition:
    """Kota Bogor's APBD 2027 after its `sequence`-th change: `reserved` of `allocation` Rupiah."""
    budget = budget or key()
    return ev.BudgetPosition(
        **budget.model_dump(),
        sequence=sequence,
        as_of=START + timedelta(minutes=sequence),
        allocation=allocation,
        allocation_version=version if allocation is not None else 0,
        dprd_decision=f"Perda Kota Bogor 12/2026 (versi {version})" if allocation is not None else None,
        reserved=reserved,
        workers=workers if workers is not None else reserved // 201_600,
        by_month={"2027-03": reserved},
        holds_waiting=holds_waiting,
        holds_waiting_amount=holds_waiting_amount,
    )


def position_changed(p: ev.BudgetPosition) -> ev.BudgetPositionChanged:
    return ev.BudgetPositionChanged(source="lindungi/registration", subject=p.key, data=p, time=p.as_of)


def allocation_recorded(budget: ev.BudgetKey | None = None, amount: int = 1_000_000) -> ev.AllocationRecordedEvent:
    budget = budget or key()
    return ev.AllocationRecordedEvent(
        source="lindungi/registration",
        subject=budget.key,
        data=ev.AllocationRecorded(
            **budget.model_dump(),
            version=1,
            amount=amount,
            effective_date=START.date(),
            dprd_decision="Perda Kota Bogor 12/2026",
            declared_by="bpkad-kota-bogor",
            request_id="alloc-1",
        ),
    )


def held(  # noqa: PLR0913 - every fact of a hold, each with a default
    request_id: str = "req-h1",
    partner_id: str = "bogor-hr",
    *,
    budget: ev.BudgetKey | None = None,
    required: int = 201_600,
    available: int = 100_000,
    time: datetime | None = None,
) -> ev.RequestHeld:
    budget = budget or key()
    return ev.RequestHeld(
        source="lindungi/registration",
        time=time or START,
        data=ev.Held(
            request_id=request_id,
            partner_id=partner_id,
            request_event_id=f"rq-{request_id}",
            action=ev.RequestAction.ENROLL,
            reasons=[
                ev.RejectionReason(
                    code="BUDGET_EXHAUSTED",
                    field="funding_source",
                    message_id="Anggaran iuran wilayah tidak cukup untuk pendaftaran ini; permintaan ditahan "
                    "menunggu persetujuan.",
                    message_en="The region's contribution budget cannot carry this enrollment; the request is "
                    "held for approval.",
                )
            ],
            region_code="32.71",
            segment=ev.Segment.BPU,
            nik_masked=NIK_MASKED,
            nik_hash="e" * 64,
            budget=budget,
            required=required,
            available=available,
        ),
    )


def decided(
    held_request_id: str = "req-h1",
    resolution: ev.HoldResolution = ev.HoldResolution.APPROVED,
    *,
    budget: ev.BudgetKey | None = None,
    time: datetime | None = None,
    **extra: Any,
) -> ev.HoldDecidedEvent:
    return ev.HoldDecidedEvent(
        source="lindungi/registration",
        time=time or START + timedelta(hours=1),
        data=ev.HoldDecided(
            request_id=f"verdict-{held_request_id}",
            partner_id="bpkad-kota-bogor",
            request_event_id=f"rq-verdict-{held_request_id}",
            held_partner_id="bogor-hr",
            held_request_id=held_request_id,
            resolution=resolution,
            budget=budget or key(),
            **extra,
        ),
    )
