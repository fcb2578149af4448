"""What a notification is: its kind, its audience and recipient, and the message before rendering.

A `Message` names one recipient on one channel; its `delivery_id` is the ledger's key and the idempotency key
receivers see, so the same fact told to the same recipient twice is one delivery.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from services.notification.domain.addresses import display_address
from shared.events import DeliveryChannel

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    REQUEST_HELD = "request.held"  # the partner's: its request waits for a verdict on the budget
    BUDGET_THRESHOLD = "budget.threshold"  # 80% and 100% of an allocation reserved
    BUDGET_HOLD = "budget.hold"  # a request held over a budget, and each verdict on one
    BUDGET_HOLDS_DIGEST = "budget.holds.digest"  # once a day: the holds waiting, per budget
    DIGEST = "digest"


#: What only a partner hears, about its own request: a stakeholder hears of holds as `budget.hold`.
PARTNER_KINDS = frozenset({Kind.REQUEST_HELD})

#: What a stakeholder may subscribe to (a digest is a way of receiving, not a kind of news).
SUBSCRIBABLE_KINDS = frozenset(Kind) - {Kind.DIGEST} - PARTNER_KINDS


class Audience(StrEnum):
    WORKER = "worker"
    PARTNER = "partner"
    SUBSCRIBER = "subscriber"


class Stakeholder(StrEnum):
    REGIONAL_GOVERNMENT = "regional_government"  # pemerintah daerah, Disnaker
    FINANCE = "finance"  # the region's finance office: BPKAD (Badan Pengelolaan Keuangan dan Aset Daerah)
    PLANNING = "planning"  # the region's planning agency: Bappeda (Badan Perencanaan Pembangunan Daerah)
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
