"""Coverage: snapshots read from reporting's region aggregates, milestones announced once, stalls escalated.

Reporting owns the aggregate's shape; a `CoverageSnapshot` reads only the few fields milestones and stagnation
use, leniently, so a new field there changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from services.notification.domain.messages import Audience, Kind, Message
from services.notification.domain.scope import escalation_scope, region_name, subscriber_messages

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from services.notification.domain.messages import Subscription
    from shared.regions import Regions


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
        "escalated_to_name": region_name(target_scope, regions),
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
