"""Enrollment outcomes to messages: the worker's confirmation, the partner's rejection, the stakeholders' news.

A worker hears about their own participation only when they consented and gave a contact; a stakeholder learns
what happened where, never to whom; a partner hears about every rejection of its requests, by webhook. A request
held over a budget, and a verdict on one, are `holds`' to tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.notification.domain.holds import hold_messages
from services.notification.domain.messages import Audience, Kind, Message, PartnerWebhook
from services.notification.domain.scope import region_name, subscriber_messages
from shared.events import (
    DeliveryChannel,
    FundingSource,
    HoldDecidedEvent,
    Outcome,
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantTerminated,
    ParticipantUpdated,
    RequestHeld,
    RequestRejected,
    TerminationReason,
)
from shared.privacy import scrub

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from services.notification.domain.messages import Subscription
    from shared.regions import Regions

PARTICIPANT_KINDS: Mapping[type[Any], Kind] = {
    ParticipantRegistered: Kind.PARTICIPANT_REGISTERED,
    ParticipantUpdated: Kind.PARTICIPANT_UPDATED,
    ParticipantTerminated: Kind.PARTICIPANT_TERMINATED,
    ParticipantReactivated: Kind.PARTICIPANT_REACTIVATED,
}


def _payers(participant: Participant) -> list[dict[str, Any]]:
    """Who pays how much each month, largest share first; a payer with nothing to pay is left out."""
    shares = sorted(
        ((payer, amount) for payer, amount in participant.contributions.by_payer.items() if amount > 0),
        key=lambda share: (-share[1], share[0].value),
    )
    return [{"payer": payer.value, "amount": amount} for payer, amount in shares]


def participant_facts(event: Outcome, regions: Regions) -> dict[str, Any]:
    """What a worker's or a stakeholder's message about a participation may say (never a contact)."""
    data = event.data
    participant: Participant = data.participant  # type: ignore[union-attr]
    facts: dict[str, Any] = {
        "occurred_at": event.time.isoformat(),
        "nik_masked": participant.nik_masked,
        "region_code": participant.region_code,
        "region_name": region_name(participant.region_code, regions),
        "kecamatan_code": participant.kecamatan_code,
        "kecamatan_name": region_name(participant.kecamatan_code, regions),
        "segment": participant.segment.value,
        "category": participant.category.value,
        "status": participant.status.value,
        "programs": [p.value for p in participant.programs],
        "funding_source": participant.funding_source.value,
        # The APBD that pays is the budget of the regency/city responsible for the worker.
        "funder_region_name": region_name(participant.region_code, regions)
        if participant.funding_source is FundingSource.APBD
        else None,
        "contribution_total": participant.contributions.total,
        "contributions_as_of": participant.contributions.as_of.isoformat(),
        "payers": _payers(participant),
        "coverage_start": participant.coverage_start.isoformat(),
        "migrated_from": participant.migrated_from,
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
    if isinstance(event, ParticipantRegistered) and participant.migrated_from:
        return []  # moved from another system: the worker has been covered for years, nothing to welcome
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
                "subject": reason.subject,
                "limit": reason.limit,
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


def outcome_regions(event: Outcome) -> list[str | None]:
    """The regions an outcome happened in: where the participation is now and, after a move, where it was."""
    if isinstance(event, RequestRejected):
        return [event.data.region_code]
    if isinstance(event, RequestHeld | HoldDecidedEvent):
        return [event.data.budget.region_code]  # news about the budget: its region's subscribers hear
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
    if isinstance(event, RequestHeld | HoldDecidedEvent):
        return hold_messages(event, subscriptions, dict(partners), regions)
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
