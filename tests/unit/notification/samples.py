"""Hand-built events for the notification tests: the facts registration and reporting would publish."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.notification.domain.messages import SUBSCRIBABLE_KINDS, Stakeholder, Subscription
from shared import events as ev

NIK_MASKED = "3271**********01"


def contributions(by_payer: dict[ev.Payer, int] | None = None) -> ev.Contributions:
    by_payer = by_payer or {ev.Payer.FUNDER: 16_800}
    return ev.Contributions(
        as_of=date(2026, 1, 1),
        by_program={ev.Program.JKK: 10_000, ev.Program.JKM: 6_800},
        by_payer=by_payer,
        total=sum(by_payer.values()),
    )


def participant(**changes: Any) -> ev.Participant:
    """A vulnerable BPU worker in Kota Bogor, paid for by the city's APBD, who consented to e-mail and SMS."""
    fields: dict[str, Any] = {
        "participant_id": "p-" + changes.pop("pid", "1"),
        "nik_hash": "f" * 64,
        "nik_masked": NIK_MASKED,
        "status": ev.ParticipantStatus.ACTIVE,
        "region_code": "32.71",
        "province_code": "32",
        "kecamatan_code": "32.71.01",
        "segment": ev.Segment.BPU,
        "category": ev.Category.VULNERABLE,
        "programs": [ev.Program.JKK, ev.Program.JKM],
        "funding_source": ev.FundingSource.APBD,
        "contributions": contributions(),
        "sex": ev.Sex.FEMALE,
        "age_band": ev.AgeBand.FROM_30,
        "coverage_start": date(2026, 1, 1),
        "contact": ev.Contact(email="siti.aminah@example.org", phone="+6281234567890", language="id"),
    }
    fields.update(changes)
    return ev.Participant(**fields)


def _base(partner_id: str = "bogor-hr", request_id: str = "req-1", version: int = 1) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "partner_id": partner_id,
        "request_event_id": f"rq-{request_id}",
        "version": version,
    }


def registered(p: ev.Participant | None = None, **base: Any) -> ev.ParticipantRegistered:
    return ev.ParticipantRegistered(
        source="lindungi/registration", data=ev.Registered(participant=p or participant(), **_base(**base))
    )


def updated(
    p: ev.Participant | None = None, previous: ev.Participant | None = None, **base: Any
) -> ev.ParticipantUpdated:
    p = p or participant()
    return ev.ParticipantUpdated(
        source="lindungi/registration",
        data=ev.Updated(participant=p, previous=previous or p, **_base(version=2, **base)),
    )


def terminated(
    p: ev.Participant | None = None, reason: ev.TerminationReason = ev.TerminationReason.RESIGNED, **base: Any
) -> ev.ParticipantTerminated:
    p = p or participant(status=ev.ParticipantStatus.TERMINATED)
    return ev.ParticipantTerminated(
        source="lindungi/registration",
        data=ev.Terminated(participant=p, previous=p, reason=reason, **_base(version=3, **base)),
    )


def reactivated(p: ev.Participant | None = None, **base: Any) -> ev.ParticipantReactivated:
    p = p or participant()
    return ev.ParticipantReactivated(
        source="lindungi/registration",
        data=ev.Reactivated(participant=p, previous=p, **_base(version=4, **base)),
    )


def rejected(
    partner_id: str = "bogor-hr", request_id: str = "req-9", region_code: str | None = "32.71", **extra: Any
) -> ev.RequestRejected:
    reasons = extra.pop(
        "reasons",
        [
            ev.RejectionReason(
                code="NIK_CHECKSUM",
                field="worker.nik",
                message_id="NIK tidak valid: tanggal lahir tidak mungkin",
                message_en="Invalid NIK: impossible birth date",
            ),
            ev.RejectionReason(
                code="PROGRAM_NOT_OFFERED",
                field="programs",
                message_id="Program JP tidak tersedia untuk segmen BPU",
                message_en="Program JP is not offered to the BPU segment",
            ),
        ],
    )
    return ev.RequestRejected(
        source="lindungi/registration",
        data=ev.Rejected(
            request_id=request_id,
            partner_id=partner_id,
            request_event_id=f"rq-{request_id}",
            action=ev.RequestAction.ENROLL,
            reasons=reasons,
            region_code=region_code,
            segment=ev.Segment.BPU,
            nik_masked=NIK_MASKED,
            **extra,
        ),
    )


def aggregate(  # noqa: PLR0913, PLR0917 - every fact of a snapshot, each with a default
    region_code: str = "32.71",
    ratio: float | None = 0.1,
    target_ratio: float | None = 0.8,
    as_of: datetime | None = None,
    region_name: str = "Kota Bogor",
    level: str = "regency/city",
) -> dict[str, Any]:
    """A RegionAggregateUpdated as JSON: only the fields notification reads, plus the envelope.

    Reporting owns the aggregate's full shape; notification reads it leniently, and so does this sample.
    """
    return {
        "specversion": "1.0",
        "id": ev.new_event_id(),
        "type": "id.lindungi.region.aggregate.updated",
        "source": "lindungi/reporting",
        "subject": region_code,
        "time": (as_of or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "schemaversion": 1,
        "data": {
            "region_code": region_code,
            "region_name": region_name,
            "level": level,
            "as_of": (as_of or datetime.now(UTC)).isoformat(),
            "coverage": None
            if ratio is None
            else {
                "denominator": 1000,
                "denominator_source": "estimate",
                "ratio": ratio,
                "target_ratio": target_ratio,
                "distance_to_target": None,
            },
        },
    }


def subscription(scope: str, sid: str | None = None, **changes: Any) -> Subscription:
    """A regional government hearing about everything in `scope` by e-mail, in Indonesian, immediately."""
    fields: dict[str, Any] = {
        "subscription_id": sid or f"sub-{scope}",
        "name": f"Pemda {scope}",
        "stakeholder": Stakeholder.REGIONAL_GOVERNMENT,
        "scope": scope,
        "kinds": frozenset(SUBSCRIBABLE_KINDS),
        "channel": ev.DeliveryChannel.EMAIL,
        "address": f"pemda-{scope}@example.go.id",
    }
    fields.update(changes)
    return Subscription(**fields)
