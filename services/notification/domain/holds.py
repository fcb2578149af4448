"""Requests held over a budget, and the verdicts on them: the partner's answer and the finance office's news.

A held enrollment is neither rejected nor applied: registration waits for a second principal of the region.
- The partner that sent it is told like a rejection is told (a signed webhook, kind `request.held`, every
  reason in both languages, the NIK masked): held is an answer it must act on, e.g. by asking its region's
  checker for a verdict. The worker hears nothing while the request is held; a welcome follows approval.
- Subscribers of `budget.hold` in the budget's region or above hear of each hold and each verdict, without
  the NIK, masked or not: a finance office decides on amounts, not on people.
A verdict's own consequence (the enrollment registered, or rejected with HOLD_REFUSED) is a separate
outcome that reaches the worker, the partner and the subscribers the usual way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.notification.domain.budget import budget_names
from services.notification.domain.messages import Audience, Kind, Message
from services.notification.domain.scope import region_name, subscriber_messages
from shared.events import DeliveryChannel, HoldDecidedEvent, RequestHeld
from shared.privacy import scrub

if TYPE_CHECKING:
    from collections.abc import Iterable

    from services.notification.domain.messages import PartnerWebhook, Subscription
    from shared.events import RejectionReason
    from shared.regions import Regions


def _reasons(reasons: Iterable[RejectionReason]) -> list[dict[str, Any]]:
    return [
        {
            "code": reason.code,
            "field": reason.field,
            "subject": reason.subject,
            "limit": reason.limit,
            # Messages are free text written elsewhere: a NIK quoted in one never leaves in clear.
            "message_id": scrub(reason.message_id),
            "message_en": scrub(reason.message_en),
        }
        for reason in reasons
    ]


def held_payload(event: RequestHeld) -> dict[str, Any]:
    """The partner's webhook body: the request, the budget it waits on, every reason; NIK masked."""
    data = event.data
    return {
        "request_id": data.request_id,
        "partner_id": data.partner_id,
        "request_event_id": data.request_event_id,
        "action": data.action.value,
        "region_code": data.region_code,
        "segment": data.segment.value,
        "nik_masked": data.nik_masked,
        "held_at": event.time.isoformat(),
        "budget": {**data.budget.model_dump(mode="json"), "key": data.budget.key},
        "required": data.required,
        "available": data.available,
        "reasons": _reasons(data.reasons),
    }


def held_partner_message(event: RequestHeld, webhook: PartnerWebhook | None) -> Message:
    return Message(
        source_event_id=event.id,
        kind=Kind.REQUEST_HELD,
        audience=Audience.PARTNER,
        recipient_id=event.data.partner_id,
        channel=DeliveryChannel.WEBHOOK,
        address=webhook.url if webhook else None,
        language="id",
        facts=held_payload(event),
        undeliverable=None if webhook else "partner has no webhook configured",
    )


def held_facts(event: RequestHeld, regions: Regions) -> dict[str, Any]:
    """A hold as a finance office reads it: which request, which budget, how much; no NIK, masked or not."""
    data = event.data
    return {
        **budget_names(data.budget, regions),
        "request_id": data.request_id,
        "partner_id": data.partner_id,
        "action": data.action.value,
        "segment": data.segment.value,
        "worker_region_code": data.region_code,
        "worker_region_name": region_name(data.region_code, regions),
        "required": data.required,
        "available": data.available,
        "reasons": _reasons(data.reasons),
        "occurred_at": event.time.isoformat(),
    }


def decision_facts(event: HoldDecidedEvent, regions: Regions) -> dict[str, Any]:
    data = event.data
    return {
        **budget_names(data.budget, regions),
        "resolution": data.resolution.value,
        "decided_by": data.partner_id,
        "decision_request_id": data.request_id,
        "held_partner_id": data.held_partner_id,
        "held_request_id": data.held_request_id,
        "note": scrub(data.note) if data.note else None,
        "occurred_at": event.time.isoformat(),
    }


def hold_messages(
    event: RequestHeld | HoldDecidedEvent,
    subscriptions: Iterable[Subscription],
    partners: dict[str, PartnerWebhook],
    regions: Regions,
) -> list[Message]:
    """Everyone who hears of a hold (the partner and the budget's subscribers) or of a verdict (subscribers)."""
    budget = event.data.budget
    if isinstance(event, RequestHeld):
        facts, template = held_facts(event, regions), "budget.hold.held"
        partner = [held_partner_message(event, partners.get(event.data.partner_id))]
    else:
        facts, template, partner = decision_facts(event, regions), "budget.hold.decided", []
    return [
        *partner,
        *subscriber_messages(
            source_event_id=event.id,
            kind=Kind.BUDGET_HOLD,
            region_codes=[budget.region_code],
            facts=facts,
            subscriptions=subscriptions,
            regions=regions,
            template=template,
        ),
    ]
