"""Notification deliveries: one record per notification once it was sent or finally failed."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from shared.events.envelope import CloudEvent, Frozen


class DeliveryChannel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"
    SMS = "SMS"


class Delivery(Frozen):
    """One notification to one recipient through one channel, once it was sent or finally failed."""

    delivery_id: str = Field(description="the ledger key; also the `Idempotency-Key` receivers saw")
    source_event_id: str = Field(
        description="the outcome event id, or `milestone:...`, `stagnant:...`, `digest:...` for notices"
    )
    kind: str = Field(description="what the notification is about, e.g. `participant.registered`")
    recipient_kind: Literal["worker", "partner", "subscriber"]
    recipient_id: str | None = Field(default=None, description="partner id or subscription id; none for workers")
    recipient: str = Field(
        description="the address, masked: `s***@example.org`, `+62********890`, a URL without its query"
    )
    channel: DeliveryChannel
    attempts: int = Field(ge=0, description="0 when it could not be attempted at all (e.g. no webhook configured)")
    error: str | None = Field(default=None, description="the last error, personal data masked")


class NotificationDelivered(CloudEvent[Delivery]):
    type: Literal["id.lindungi.notification.delivered"] = "id.lindungi.notification.delivered"


class NotificationFailed(CloudEvent[Delivery]):
    type: Literal["id.lindungi.notification.failed"] = "id.lindungi.notification.failed"


DeliveryEvent = Annotated[NotificationDelivered | NotificationFailed, Field(discriminator="type")]
delivery_adapter: TypeAdapter[DeliveryEvent] = TypeAdapter(DeliveryEvent)
