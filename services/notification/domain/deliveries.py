"""A delivery that reached its end, and the event that reports it on the deliveries topic.

The event's id is the delivery id and its status, so reporting the same delivery again (the sweeper after a
crash between publishing and marking it reported) is recognisably the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from services.notification.domain.messages import Audience
from shared.events import Delivery, NotificationDelivered, NotificationFailed

if TYPE_CHECKING:
    from datetime import datetime

    from shared.events import DeliveryChannel


@dataclass(frozen=True, slots=True)
class Settled:
    """A delivery that reached its end (`sent` or `failed`), as the deliveries topic reports it."""

    delivery_id: str
    source_event_id: str
    kind: str
    audience: Audience
    recipient_id: str | None
    recipient_display: str
    channel: DeliveryChannel
    status: Literal["sent", "failed"]
    attempts: int
    error: str | None
    settled_at: datetime


def delivery_event(settled: Settled, source: str) -> NotificationDelivered | NotificationFailed:
    """The deliveries-topic event for a settled delivery; its id is fixed so a re-report is recognisable."""
    data = Delivery(
        delivery_id=settled.delivery_id,
        source_event_id=settled.source_event_id,
        kind=settled.kind,
        recipient_kind=settled.audience.value,
        recipient_id=settled.recipient_id if settled.audience is not Audience.WORKER else None,
        recipient=settled.recipient_display,
        channel=settled.channel,
        attempts=settled.attempts,
        error=settled.error,
    )
    common = {"id": f"{settled.delivery_id}.{settled.status}", "source": source, "time": settled.settled_at}
    if settled.status == "sent":
        return NotificationDelivered(subject=settled.kind, data=data, **common)
    return NotificationFailed(subject=settled.kind, data=data, **common)
