"""Seeded benchmark data: partners' requests for the intake topic, and outcome events for the services after it.

Requests come from the synthetic request generator (`synthetic`, its fast path, plain dicts), wrapped in the
CloudEvents envelope a partner system sends. Outcome events are what registration decides for such requests:
a few thousand are decided for real with the registration domain (pure, no I/O), and the millions a reporting
benchmark needs repeat those decisions under fresh event ids, which is all that tells two events apart for
the consumers (reporting's dedupe window and notification's ledger key on the event id). Everything follows
from the seed, event ids included, so two runs of the harness read the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from services.registration.domain.decisions import Context, Partner, decide
from shared.events import (
    EnrollmentRequested,
    FundingSource,
    ParticipantRegistered,
    RequestRejected,
    Segment,
    TerminationReason,
    TerminationRequest,
    TerminationRequested,
)
from shared.messaging import CONTENT_TYPE
from shared.regions import NATIONAL_CODE, load_regions
from synthetic import generate_dicts

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from bench.kafka import Record

ENROLLMENT_TYPE = "id.lindungi.enrollment.requested"


def partner_ids(count: int) -> list[str]:
    return [f"bench-partner-{i}" for i in range(count)]


def partners(count: int) -> list[dict[str, Any]]:
    """National partners allowed every segment and funding source: the rules, not the authority, decide."""
    return [
        {
            "partner_id": partner_id,
            "name": f"Benchmark partner {i}",
            "regions": [NATIONAL_CODE],
            "segments": [s.value for s in Segment],
            "funding_sources": [f.value for f in FundingSource],
        }
        for i, partner_id in enumerate(partner_ids(count))
    ]


def _envelope_time(today: date) -> str:
    return datetime.combine(today, time(1, 0), tzinfo=UTC).isoformat()


def request_records(
    n: int, seed: int, *, today: date, partner_count: int = 4, invalid_share: float = 0.05
) -> Iterator[Record]:
    """`n` enrollment requests as intake records (key: the NIK), spread over `partner_count` partners.

    No re-sends: a request sent twice in one batch is answered once, and the harness counts outcomes to know
    when every request was handled.
    """
    for _request_id, record in identified_requests(
        n, seed, today=today, partner_count=partner_count, invalid_share=invalid_share
    ):
        yield record


def identified_requests(
    n: int, seed: int, *, today: date, partner_count: int = 4, invalid_share: float = 0.05
) -> Iterator[tuple[str, Record]]:
    """The same requests with their request ids (what the outcome answering each one names)."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    sources = [f"partner/{p}" for p in partner_ids(partner_count)]
    sent_at = _envelope_time(today)
    for index, item in enumerate(
        generate_dicts(n, seed, today=today, invalid_share=invalid_share, regions=load_regions())
    ):
        data = item.data
        event_id = f"bench-{seed}-{index:09d}"
        source = sources[index % partner_count]
        envelope = (
            f'{{"specversion":"1.0","id":"{event_id}","type":"{ENROLLMENT_TYPE}","source":"{source}",'
            f'"subject":"{data["request_id"]}","time":"{sent_at}","datacontenttype":"application/json",'
            f'"schemaversion":1,"data":{dumps(data)}}}'
        )
        headers = [
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_type", ENROLLMENT_TYPE.encode()),
            ("ce_source", source.encode()),
            ("ce_time", sent_at.encode()),
            ("ce_schemaversion", b"1"),
        ]
        yield data["request_id"], (data["worker"]["nik"].encode(), envelope.encode(), headers)


# --- outcome events ----------------------------------------------------------------------------------------

_MARK = "bench-outcome-template-id"


@dataclass(frozen=True)
class OutcomeTemplate:
    """One decided outcome event with a placeholder id, and the facts the harness routes by."""

    key: bytes
    value: bytes  # JSON with `_MARK` where the event id goes
    type: str
    partner_id: str
    region_code: str | None
    worker_email: str | None  # set when the worker consented and gave an e-mail address

    def record(self, event_id: str) -> Record:
        headers = [
            ("content-type", CONTENT_TYPE.encode()),
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_type", self.type.encode()),
            ("ce_source", b"lindungi/registration"),
            ("ce_schemaversion", b"1"),
        ]
        return self.key, self.value.replace(_MARK.encode(), event_id.encode()), headers


def outcome_templates(
    count: int, seed: int, *, today: date, nik_secret: bytes, partner_count: int = 4
) -> list[OutcomeTemplate]:
    """Decide `count` synthetic requests with the registration domain; one in twenty of the registered
    participants is then terminated, so the mix has registrations, rejections and terminations."""
    regions = load_regions()
    ctx = Context(
        today=today, regions=regions, nik_secret=nik_secret, now=datetime.combine(today, time(2, 0), tzinfo=UTC)
    )
    known = {p["partner_id"]: Partner.model_validate(p) for p in partners(partner_count)}
    templates: list[OutcomeTemplate] = []
    terminations: list[OutcomeTemplate] = []
    registered = 0
    for _key, value, _headers in request_records(
        count, seed, today=today, partner_count=partner_count, invalid_share=0.1
    ):
        request = EnrollmentRequested.model_validate_json(value)
        decision = decide(request, known[request.source.removeprefix("partner/")], None, ctx)
        templates.append(_template(decision.outcome, decision.outcome_key, decision.partner_id))
        if decision.participant is None:
            continue
        registered += 1
        if registered % 20 == 0:
            termination = TerminationRequested(
                id=f"{request.id}-end",  # seeded like everything else, not a random uuid
                time=ctx.now,
                source=request.source,
                data=TerminationRequest(
                    request_id=f"{request.data.request_id}-end",
                    nik=request.data.worker.nik,
                    segment=request.data.segment,
                    reason=TerminationReason.CONTRACT_ENDED,
                    effective_date=max(today, request.data.coverage_start),
                ),
            )
            ended = decide(termination, known[decision.partner_id], decision.participant, ctx)
            terminations.append(_template(ended.outcome, ended.outcome_key, ended.partner_id))
    # Terminations after every registration, so that each cycle through the templates ends participations
    # that the same cycle started (same key, same partition: the order holds).
    return templates + terminations


def _template(outcome: Any, key: str, partner_id: str) -> OutcomeTemplate:
    marked = outcome.model_copy(update={"id": _MARK})
    region = None
    email = None
    if isinstance(outcome, RequestRejected):
        region = outcome.data.region_code
    else:
        participant = outcome.data.participant
        region = participant.region_code
        if isinstance(outcome, ParticipantRegistered) and participant.contact is not None:
            email = participant.contact.email
    return OutcomeTemplate(
        key=key.encode(),
        value=marked.model_dump_json().encode(),
        type=outcome.type,
        partner_id=partner_id,
        region_code=region,
        worker_email=email,
    )


def outcome_records(n: int, seed: int, templates: Sequence[OutcomeTemplate]) -> Iterator[Record]:
    """`n` outcome events cycling through the templates, each with its own event id."""
    count = len(templates)
    for index in range(n):
        yield templates[index % count].record(f"bench-{seed}-outcome-{index:09d}")
