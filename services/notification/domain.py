"""Who hears what: the notification rules, pure (no I/O, no broker, no database).

Three audiences:
- the worker (pekerja), about their own registration, update, termination or reactivation, only when they
  consented and gave an e-mail address or a phone number (the `contact` of the outcome);
- the partner that sent a request, about every rejection, by signed webhook;
- subscribed stakeholders (pemerintah daerah, DPRD, employers, unions, BPJS branch offices), about the
  events in the region their subscription names or below it, immediately or in a daily digest.

The rules take facts (an outcome, the subscriptions whose scope could match, the partner's webhook) and return
`Message`s: who, through which channel, about what, with the facts a template needs. The wording lives in the
templates, one file per kind and language; nothing here talks to a channel.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.events import (
    DeliveryChannel,
    FundingSource,
    Outcome,
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantTerminated,
    ParticipantUpdated,
    RequestRejected,
    TerminationReason,
)
from shared.privacy import scrub
from shared.regions import NATIONAL_CODE, Regions

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

Language = Literal["id", "en"]
DigestMode = Literal["none", "daily"]


class Kind(StrEnum):
    """What a notification is about; also the template name (`<kind>.<lang>.txt.j2`)."""

    PARTICIPANT_REGISTERED = "participant.registered"
    PARTICIPANT_UPDATED = "participant.updated"
    PARTICIPANT_TERMINATED = "participant.terminated"
    PARTICIPANT_REACTIVATED = "participant.reactivated"
    REQUEST_REJECTED = "request.rejected"
    COVERAGE_MILESTONE = "coverage.milestone"
    COVERAGE_STAGNANT = "coverage.stagnant"
    DIGEST = "digest"


#: What a stakeholder may subscribe to (a digest is a way of receiving, not a kind of news).
SUBSCRIBABLE_KINDS = frozenset(Kind) - {Kind.DIGEST}

PARTICIPANT_KINDS: Mapping[type[Any], Kind] = {
    ParticipantRegistered: Kind.PARTICIPANT_REGISTERED,
    ParticipantUpdated: Kind.PARTICIPANT_UPDATED,
    ParticipantTerminated: Kind.PARTICIPANT_TERMINATED,
    ParticipantReactivated: Kind.PARTICIPANT_REACTIVATED,
}


class Audience(StrEnum):
    WORKER = "worker"
    PARTNER = "partner"
    SUBSCRIBER = "subscriber"


class Stakeholder(StrEnum):
    REGIONAL_GOVERNMENT = "regional_government"  # pemerintah daerah, Bappeda, Disnaker
    DPRD = "dprd"  # regional parliament
    EMPLOYER = "employer"
    UNION = "union"  # serikat pekerja
    BPJS_BRANCH = "bpjs_branch"  # kantor cabang BPJS Ketenagakerjaan
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stakeholder's standing request to hear about `kinds` of events in `scope` and below it."""

    subscription_id: str
    name: str
    stakeholder: Stakeholder
    scope: str  # `ID` (national), a province, a regency/city or a kecamatan code
    kinds: frozenset[Kind]
    channel: DeliveryChannel
    address: str
    language: Language = "id"
    digest: DigestMode = "none"


@dataclass(frozen=True, slots=True)
class PartnerWebhook:
    partner_id: str
    url: str


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one recipient through one channel, before rendering."""

    source_event_id: str
    kind: Kind
    audience: Audience
    recipient_id: str | None  # partner id or subscription id; a worker is known only by their address
    channel: DeliveryChannel
    address: str | None
    language: Language
    facts: Mapping[str, Any]
    template: str | None = None  # None: the payload is the facts themselves (partner webhooks)
    digest: bool = False
    undeliverable: str | None = None  # why it cannot be sent at all (e.g. the partner has no webhook)

    @property
    def delivery_id(self) -> str:
        recipient = self.recipient_id if self.audience is not Audience.WORKER else self.address
        return delivery_id(self.source_event_id, self.audience, recipient or "", self.channel)

    @property
    def recipient_display(self) -> str:
        return display_address(self.channel, self.address) if self.address else f"{self.audience}/{self.recipient_id}"


def delivery_id(source_event_id: str, audience: Audience, recipient: str, channel: DeliveryChannel) -> str:
    """The ledger key and the idempotency key receivers see.

    Hashed because the recipient of a worker is their address: the key travels in headers and logs and must
    not carry personal data. 160 bits leave no practical room for collisions.
    """
    raw = f"{source_event_id}\x1f{audience.value}\x1f{recipient}\x1f{channel.value}"
    # Base32, not hex: a hex string can hold a run of 16 decimal digits, which every NIK scrubber would mask.
    return base64.b32encode(hashlib.sha256(raw.encode()).digest()[:20]).decode("ascii").lower()


# --- Masking addresses (workers' contacts are personal data) ------------------------------------------------


def mask_email(address: str) -> str:
    """`siti.aminah@example.org` -> `s***@example.org`."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """`+6281234567890` -> `+62*******890`: the country code and the last three digits stay readable."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 5:
        return "*" * len(digits)
    plus = "+" if number.strip().startswith("+") else ""
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"


def mask_url(url: str) -> str:
    """Scheme, host and path only: a query string or user info may hold a token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def display_address(channel: DeliveryChannel, address: str) -> str:
    if channel is DeliveryChannel.EMAIL:
        return mask_email(address)
    if channel is DeliveryChannel.SMS:
        return mask_phone(address)
    return mask_url(address)


def redact(text: str, addresses: Iterable[str | None]) -> str:
    """An error or log text with every known address masked and every NIK-shaped run masked."""
    for address in addresses:
        if address:
            text = text.replace(address, display_address(_channel_of(address), address))
    return scrub(text)


def _channel_of(address: str) -> DeliveryChannel:
    if "://" in address:
        return DeliveryChannel.WEBHOOK
    return DeliveryChannel.EMAIL if "@" in address else DeliveryChannel.SMS


# --- Scope: the region hierarchy ----------------------------------------------------------------------------


def ancestry(code: str, regions: Regions) -> list[str]:
    """A region and everything above it: `32.71.01` -> [32.71.01, 32.71, 32, ID].

    Kemendagri codes nest by prefix, so a code missing from the reference data (an old code after a region
    split) still reaches its province and the nation.
    """
    known = [r.code for r in regions.ancestors(code)]
    if known:
        return known
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)] + [NATIONAL_CODE]


def scopes_covering(region_codes: Iterable[str | None], regions: Regions) -> set[str]:
    """Every scope whose subscribers hear about something that happened in these regions."""
    return {scope for code in region_codes if code for scope in ancestry(code, regions)}


def hears(subscription: Subscription, kind: Kind, scopes: set[str]) -> bool:
    return kind in subscription.kinds and subscription.scope in scopes


def escalation_scope(region_code: str) -> str | None:
    """Where a stagnating region is escalated: its province, or the nation for a province."""
    if region_code == NATIONAL_CODE:
        return None
    if "." not in region_code:
        return NATIONAL_CODE
    return region_code.split(".", 1)[0]


# --- Outcomes -> messages -----------------------------------------------------------------------------------


def _payers(participant: Participant) -> list[dict[str, Any]]:
    """Who pays how much each month, largest share first; a payer with nothing to pay is left out."""
    shares = sorted(
        ((payer, amount) for payer, amount in participant.contributions.by_payer.items() if amount > 0),
        key=lambda share: (-share[1], share[0].value),
    )
    return [{"payer": payer.value, "amount": amount} for payer, amount in shares]


def _region_name(code: str | None, regions: Regions) -> str | None:
    if code is None:
        return None
    region = regions.get(code)
    return region.name if region else code


def participant_facts(event: Outcome, regions: Regions) -> dict[str, Any]:
    """What a worker's or a stakeholder's message about a participation may say (never a contact)."""
    data = event.data
    participant: Participant = data.participant  # type: ignore[union-attr]
    facts: dict[str, Any] = {
        "occurred_at": event.time.isoformat(),
        "nik_masked": participant.nik_masked,
        "region_code": participant.region_code,
        "region_name": _region_name(participant.region_code, regions),
        "kecamatan_code": participant.kecamatan_code,
        "kecamatan_name": _region_name(participant.kecamatan_code, regions),
        "segment": participant.segment.value,
        "category": participant.category.value,
        "status": participant.status.value,
        "programs": [p.value for p in participant.programs],
        "funding_source": participant.funding_source.value,
        # The APBD that pays is the budget of the regency/city responsible for the worker.
        "funder_region_name": _region_name(participant.region_code, regions)
        if participant.funding_source is FundingSource.APBD
        else None,
        "contribution_total": participant.contributions.total,
        "contributions_as_of": participant.contributions.as_of.isoformat(),
        "payers": _payers(participant),
        "coverage_start": participant.coverage_start.isoformat(),
        "reason": event.data.reason.value if isinstance(event, ParticipantTerminated) else None,
    }
    return facts


def _stakeholder_view(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Stakeholders learn what happened where, never to whom: no masked NIK either (data minimisation)."""
    return {k: v for k, v in facts.items() if k != "nik_masked"}


def worker_messages(event: Outcome, regions: Regions) -> list[Message]:
    """The worker's own confirmation, on each channel they gave, in the language they chose."""
    kind = PARTICIPANT_KINDS.get(type(event))
    if kind is None:
        return []
    participant: Participant = event.data.participant  # type: ignore[union-attr]
    contact = participant.contact
    if contact is None:  # no consent, or nothing to reach them by
        return []
    if isinstance(event, ParticipantTerminated) and event.data.reason is TerminationReason.DECEASED:
        return []  # a message to a deceased worker's phone would reach a grieving family, not the worker
    facts = participant_facts(event, regions)
    channels = [(DeliveryChannel.EMAIL, contact.email), (DeliveryChannel.SMS, contact.phone)]
    return [
        Message(
            source_event_id=event.id,
            kind=kind,
            audience=Audience.WORKER,
            recipient_id=None,
            channel=channel,
            address=address,
            language=contact.language,
            facts=facts,
            template=kind.value,
        )
        for channel, address in channels
        if address
    ]


def rejection_payload(event: RequestRejected) -> dict[str, Any]:
    """The partner's webhook body: the request and every reason, in both languages, NIK masked."""
    data = event.data
    return {
        "request_id": data.request_id,
        "partner_id": data.partner_id,
        "request_event_id": data.request_event_id,
        "action": data.action.value if data.action else None,
        "region_code": data.region_code,
        "segment": data.segment.value if data.segment else None,
        "nik_masked": data.nik_masked,
        "rejected_at": event.time.isoformat(),
        "reasons": [
            {
                "code": reason.code,
                "field": reason.field,
                # Messages are free text written elsewhere: a NIK quoted in one never leaves in clear.
                "message_id": scrub(reason.message_id),
                "message_en": scrub(reason.message_en),
            }
            for reason in data.reasons
        ],
    }


def partner_message(event: RequestRejected, webhook: PartnerWebhook | None) -> Message:
    return Message(
        source_event_id=event.id,
        kind=Kind.REQUEST_REJECTED,
        audience=Audience.PARTNER,
        recipient_id=event.data.partner_id,
        channel=DeliveryChannel.WEBHOOK,
        address=webhook.url if webhook else None,
        language="id",
        facts=rejection_payload(event),
        undeliverable=None if webhook else "partner has no webhook configured",
    )


def subscriber_messages(  # noqa: PLR0913 - keyword-only: the facts of one notice, each named
    *,
    source_event_id: str,
    kind: Kind,
    region_codes: Iterable[str | None],
    facts: Mapping[str, Any],
    subscriptions: Iterable[Subscription],
    regions: Regions,
    template: str,
) -> list[Message]:
    scopes = scopes_covering(region_codes, regions)
    return [
        Message(
            source_event_id=source_event_id,
            kind=kind,
            audience=Audience.SUBSCRIBER,
            recipient_id=s.subscription_id,
            channel=s.channel,
            address=s.address,
            language=s.language,
            facts=facts,
            template=template,
            digest=s.digest == "daily",
        )
        for s in subscriptions
        if hears(s, kind, scopes)
    ]


def outcome_regions(event: Outcome) -> list[str | None]:
    """The regions an outcome happened in: where the participation is now and, after a move, where it was."""
    if isinstance(event, RequestRejected):
        return [event.data.region_code]
    participant: Participant = event.data.participant
    codes: list[str | None] = [participant.region_code, participant.kecamatan_code]
    previous: Participant | None = getattr(event.data, "previous", None)
    if previous is not None:
        codes += [previous.region_code, previous.kecamatan_code]
    return codes


def messages_for_outcome(
    event: Outcome,
    subscriptions: Iterable[Subscription],
    partners: Mapping[str, PartnerWebhook],
    regions: Regions,
) -> list[Message]:
    """Everyone who hears about one outcome."""
    if isinstance(event, RequestRejected):
        stakeholder_facts = {k: v for k, v in rejection_payload(event).items() if k != "nik_masked"}
        return [
            partner_message(event, partners.get(event.data.partner_id)),
            *subscriber_messages(
                source_event_id=event.id,
                kind=Kind.REQUEST_REJECTED,
                region_codes=outcome_regions(event),
                facts=stakeholder_facts,
                subscriptions=subscriptions,
                regions=regions,
                template="stakeholder.request.rejected",
            ),
        ]
    kind = PARTICIPANT_KINDS[type(event)]
    facts = {**_stakeholder_view(participant_facts(event, regions)), "kind": kind.value}
    return [
        *worker_messages(event, regions),
        *subscriber_messages(
            source_event_id=event.id,
            kind=kind,
            region_codes=outcome_regions(event),
            facts=facts,
            subscriptions=subscriptions,
            regions=regions,
            template="stakeholder.participant",
        ),
    ]


# --- Coverage: milestones and stagnation --------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _CoverageView(_Lenient):
    ratio: float | None = None
    target_ratio: float | None = None


class _AggregateView(_Lenient):
    region_code: str
    region_name: str | None = None
    level: str | None = None
    as_of: datetime
    coverage: _CoverageView | None = None


class _AggregateEventView(_Lenient):
    id: str
    type: Literal["id.lindungi.region.aggregate.updated"]
    data: _AggregateView


class UnreadableAggregateError(ValueError):
    """The record is not a region aggregate this service can read coverage from."""


@dataclass(frozen=True, slots=True)
class CoverageSnapshot:
    """A region's coverage as notification needs it, read leniently from a RegionAggregateUpdated.

    Reporting owns the aggregate's shape; this reads only the few fields milestones and stagnation use, so a
    new field there changes nothing here.
    """

    event_id: str
    region_code: str
    region_name: str
    level: str | None
    as_of: datetime
    ratio: float | None
    target_ratio: float | None

    @property
    def progress(self) -> float | None:
        """Share of the target reached (1.0 = target met); the plain coverage ratio when no target is set."""
        if self.ratio is None:
            return None
        if self.target_ratio:
            return self.ratio / self.target_ratio
        return self.ratio


def read_coverage(raw: bytes | str) -> CoverageSnapshot:
    try:
        event = _AggregateEventView.model_validate_json(raw)
    except ValidationError as exc:
        raise UnreadableAggregateError(str(exc)) from exc
    data = event.data
    as_of = data.as_of if data.as_of.tzinfo else data.as_of.replace(tzinfo=UTC)
    return CoverageSnapshot(
        event_id=event.id,
        region_code=data.region_code,
        region_name=data.region_name or data.region_code,
        level=data.level,
        as_of=as_of,
        ratio=data.coverage.ratio if data.coverage else None,
        target_ratio=data.coverage.target_ratio if data.coverage else None,
    )


def newly_crossed(progress: float, thresholds: Iterable[int], reached: Iterable[int]) -> list[int]:
    """Thresholds (percent of target) this progress has crossed that were not reached before, ascending."""
    percent = progress * 100
    done = set(reached)
    # A ratio computed from counts may land a hair under an exact threshold (0.1 + 0.2 style): allow 1e-9.
    return sorted(t for t in set(thresholds) if t not in done and percent + 1e-9 >= t)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def milestone_source_id(region_code: str, threshold: int) -> str:
    return f"milestone:{region_code}:{threshold}"


def milestone_messages(
    snapshot: CoverageSnapshot,
    announced: Sequence[int],
    subscriptions: Iterable[Subscription],
    regions: Regions,
) -> list[Message]:
    """One announcement for the highest threshold this snapshot crossed, naming the lower ones it also did."""
    if not announced:
        return []
    top = max(announced)
    facts = {
        "region_code": snapshot.region_code,
        "region_name": snapshot.region_name,
        "level": snapshot.level,
        "threshold": top,
        "also_crossed": sorted(t for t in announced if t != top),
        "progress_percent": _percent(snapshot.progress),
        "coverage_percent": _percent(snapshot.ratio),
        "target_percent": _percent(snapshot.target_ratio),
        "as_of": snapshot.as_of.isoformat(),
    }
    return subscriber_messages(
        source_event_id=milestone_source_id(snapshot.region_code, top),
        kind=Kind.COVERAGE_MILESTONE,
        region_codes=[snapshot.region_code],
        facts=facts,
        subscriptions=subscriptions,
        regions=regions,
        template=Kind.COVERAGE_MILESTONE.value,
    )


def made_progress(previous: float | None, current: float) -> bool:
    return previous is None or current > previous + 1e-12


@dataclass(frozen=True, slots=True)
class RegionProgress:
    """The last coverage seen for a region and when it last went up."""

    region_code: str
    region_name: str
    level: str | None
    progress: float
    last_progress_at: datetime


def periods_without_progress(region: RegionProgress, now: datetime, period: timedelta) -> int:
    """Whole periods since the region last moved; 0 when it moved recently or already met its target."""
    if region.progress >= 1.0 or period <= timedelta(0):
        return 0
    return max(0, (now - region.last_progress_at) // period)


def stagnation_source_id(region: RegionProgress, periods: int) -> str:
    # The last progress time is part of the id: after new progress and a new stall, escalation starts afresh.
    return f"stagnant:{region.region_code}:{int(region.last_progress_at.timestamp())}:{periods}"


def stagnation_messages(
    region: RegionProgress,
    now: datetime,
    period: timedelta,
    subscriptions: Iterable[Subscription],
    regions: Regions,
) -> list[Message]:
    """Escalate a stalled region to the subscribers of its province (a province: to national subscribers)."""
    periods = periods_without_progress(region, now, period)
    target_scope = escalation_scope(region.region_code)
    if periods == 0 or target_scope is None:
        return []
    facts = {
        "region_code": region.region_code,
        "region_name": region.region_name,
        "level": region.level,
        "escalated_to_code": target_scope,
        "escalated_to_name": _region_name(target_scope, regions),
        "progress_percent": _percent(region.progress),
        "last_progress_at": region.last_progress_at.isoformat(),
        "days_without_progress": (now - region.last_progress_at).days,
        "periods": periods,
    }
    kind = Kind.COVERAGE_STAGNANT
    return [
        Message(
            source_event_id=stagnation_source_id(region, periods),
            kind=kind,
            audience=Audience.SUBSCRIBER,
            recipient_id=s.subscription_id,
            channel=s.channel,
            address=s.address,
            language=s.language,
            facts=facts,
            template=kind.value,
            digest=s.digest == "daily",
        )
        for s in subscriptions
        if kind in s.kinds and s.scope == target_scope
    ]


# --- Daily digest -------------------------------------------------------------------------------------------


def _jakarta() -> tzinfo:
    try:
        return ZoneInfo("Asia/Jakarta")
    except ZoneInfoNotFoundError:  # a slim image without tzdata: WIB has been UTC+7 without DST since 1964
        return timezone(timedelta(hours=7), "WIB")


JAKARTA = _jakarta()


def jakarta_date(now: datetime) -> date:
    return now.astimezone(JAKARTA).date()


def digest_day_due(now: datetime, hour: int) -> date | None:
    """The day whose digest is due at `now`: today in Jakarta once the digest hour has passed."""
    local = now.astimezone(JAKARTA)
    return local.date() if local.hour >= hour else None


def digest_source_id(subscription_id: str, day: date) -> str:
    return f"digest:{subscription_id}:{day.isoformat()}"


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One event held back for a subscriber's digest, with its one-line summary in their language."""

    item_id: str
    subscription_id: str
    kind: Kind
    source_event_id: str
    summary: str
    occurred_at: datetime


def digest_message(subscription: Subscription, day: date, items: Sequence[DigestItem]) -> Message | None:
    if not items:
        return None
    ordered = sorted(items, key=lambda item: (item.occurred_at, item.item_id))
    counts: dict[str, int] = {}
    for item in ordered:
        counts[item.kind.value] = counts.get(item.kind.value, 0) + 1
    facts = {
        "day": day.isoformat(),
        "subscription_name": subscription.name,
        "scope": subscription.scope,
        "total": len(ordered),
        "counts": counts,
        "items": [
            {"kind": i.kind.value, "summary": i.summary, "occurred_at": i.occurred_at.isoformat()} for i in ordered
        ],
    }
    return Message(
        source_event_id=digest_source_id(subscription.subscription_id, day),
        kind=Kind.DIGEST,
        audience=Audience.SUBSCRIBER,
        recipient_id=subscription.subscription_id,
        channel=subscription.channel,
        address=subscription.address,
        language=subscription.language,
        facts=facts,
        template=Kind.DIGEST.value,
    )
