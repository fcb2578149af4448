"""Scope: the region hierarchy, and which subscribers hear about what happened where.

A subscription names a scope (`ID` for the nation, a province, a regency/city or a kecamatan) and hears about
everything that happens in it or below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.notification.domain.messages import Audience, Kind, Message, Subscription
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from shared.regions import Regions


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


def region_name(code: str | None, regions: Regions) -> str | None:
    """The reference data's name for a region code; the code itself for a code it does not know."""
    if code is None:
        return None
    region = regions.get(code)
    return region.name if region else code


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
    """A message for each subscription that hears of `kind` in these regions, now or in its daily digest."""
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
