"""The daily digest: events held back for a subscriber, sent together once a day after the digest hour (WIB).

The day is Asia/Jakarta's: a digest covers what was held until it is sent, and its id names the subscriber
and the day, so flushing the same day again (a restart, a second instance) is the same digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.notification.domain.messages import Audience, Kind, Message

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.notification.domain.messages import Subscription


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
