"""What an outcome counts, and where: outcome events become additive counters per leaf region.

Words used here:
- a *leaf* is where an outcome is counted: the participant's kecamatan when it is known and lies in the
  responsible regency/city, otherwise the regency/city itself; a rejection's region, otherwise the nation.
  A region's figures are the sum of every leaf at or below it (`lineage`), so a parent always equals the sum
  of its children plus what is counted at its own level only.
- *counters* are a flat, sparse mapping `name -> int` (names built by the `*_key` helpers); zero is absent.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args
from zoneinfo import ZoneInfo

from shared.events import (
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantStatus,
    ParticipantTerminated,
    ParticipantUpdated,
    RequestHeld,
    RequestRejected,
)
from shared.regions import NATIONAL_CODE, Level

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shared.events import Outcome

WIB = ZoneInfo("Asia/Jakarta")  # "today" and "this month" are dates in Indonesia's western time zone

Counters = dict[str, int]
# A migration (an existing participation moved from another system) is its own flow: counting it as an
# enrollment would show a region's data transfer as a surge of newly protected workers. A hold (an enrollment
# the budget could not carry, waiting for a second principal) is a flow of requests, not of participants: the
# enrollment is counted if and when it is approved.
Flow = Literal["enrollments", "terminations", "reactivations", "migrations", "holds"]
FLOWS: tuple[Flow, ...] = get_args(Flow)

ACTIVE = "active"
REJECTIONS = "rejections"
# Breakdowns of active participants; the value is the enum's value (`segment/PU`, `age/20-29`).
SEGMENT, CATEGORY, PROGRAM, FUNDING, SEX, AGE = "segment", "category", "program", "funding", "sex", "age"
CONTRIBUTION = "contrib"  # `contrib/<funding source>/<payer>`: Rupiah per month
CONTRIBUTORS = "contrib_n"  # `contrib_n/<funding source>/<payer>`: participants behind that amount
REJECTION_REASON, REJECTION_PARTNER = "reject_reason", "reject_partner"


def flow_key(flow: Flow, period: str = "total") -> str:
    """`flow/enrollments/total`, `flow/enrollments/day/2026-03-05`, `flow/enrollments/month/2026-03`."""
    return f"flow/{flow}/{period}"


_DAY_LENGTH, _MONTH_LENGTH = len("2026-03-05"), len("2026-03")  # what a flow name ends with: total, a day, a month


def day_period(day: date) -> str:
    return f"day/{day.isoformat()}"


def month_period(day: date) -> str:
    return f"month/{day.year:04d}-{day.month:02d}"


def contribution_key(funding_source: str, payer: str, *, contributors: bool = False) -> str:
    return f"{CONTRIBUTORS if contributors else CONTRIBUTION}/{funding_source}/{payer}"


# --- Region codes: the roll-up follows the code's structure, so a code missing from the reference data still
# --- adds up into its parents (an old code after a region split, for example).


def parent_of(code: str) -> str | None:
    if code == NATIONAL_CODE:
        return None
    return code.rsplit(".", 1)[0] if "." in code else NATIONAL_CODE


def lineage(code: str) -> tuple[str, ...]:
    """The region and everything it rolls up into: `32.71.01` -> (32.71.01, 32.71, 32, ID)."""
    chain = [code]
    while (parent := parent_of(chain[-1])) is not None:
        chain.append(parent)
    return tuple(chain)


def level_of(code: str) -> Level:
    if code == NATIONAL_CODE:
        return "national"
    return ("province", "regency/city", "kecamatan")[min(code.count("."), 2)]


def leaf_of(participant: Participant) -> str:
    """Kecamatan when known and inside the responsible regency/city; otherwise the regency/city itself.

    A worker may live in a kecamatan of another regency than the one responsible for them; counting them there
    would move them out of the responsible region's figures, so they are counted at regency/city level.
    """
    kecamatan, region = participant.kecamatan_code, participant.region_code
    if kecamatan is not None and level_of(region) == "regency/city" and kecamatan.startswith(region + "."):
        return kecamatan
    return region


def business_date(moment: datetime) -> date:
    """The WIB date of an instant; a time without an offset is taken as UTC so every machine agrees."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(WIB).date()


# --- What one event changes --------------------------------------------------------------------------------


def active_counters(participant: Participant) -> Counters:
    """What one participation adds to its leaf while active: nothing once terminated."""
    if participant.status is not ParticipantStatus.ACTIVE:
        return {}
    counters: Counters = {
        ACTIVE: 1,
        f"{SEGMENT}/{participant.segment}": 1,
        f"{CATEGORY}/{participant.category}": 1,
        f"{FUNDING}/{participant.funding_source}": 1,
        f"{SEX}/{participant.sex}": 1,
        f"{AGE}/{participant.age_band}": 1,
    }
    for program in set(participant.programs):
        counters[f"{PROGRAM}/{program}"] = 1
    for payer, amount in participant.contributions.by_payer.items():
        if amount > 0:
            counters[contribution_key(participant.funding_source, payer)] = amount
            counters[contribution_key(participant.funding_source, payer, contributors=True)] = 1
    return counters


def add_into(target: Counters, delta: Mapping[str, int], sign: int = 1) -> None:
    """target += sign * delta, keeping the mapping sparse (a counter that reaches zero disappears).

    A name new to `target` is interned: the state holds counters for every leaf of every partition (about two
    million at a million participants), and without it each would keep its own copy of a name built per event,
    two thirds of the state's memory (measured in the backfill benchmark).
    """
    for key, value in delta.items():
        before = target.get(key)
        if before is None:
            if value:
                target[sys.intern(key)] = sign * value
        elif total := before + sign * value:
            target[key] = total
        else:
            del target[key]


def _moved(previous: Participant, current: Participant) -> dict[str, Counters]:
    """Take the participation out as it was, put it back as it is (maybe elsewhere, maybe inactive)."""
    changes: dict[str, Counters] = {}
    add_into(changes.setdefault(leaf_of(previous), {}), active_counters(previous), -1)
    add_into(changes.setdefault(leaf_of(current), {}), active_counters(current))
    return changes


def effects(event: Outcome) -> dict[str, Counters]:
    """The additive change an outcome makes at each leaf. Leaves left unchanged are left out."""
    changes: dict[str, Counters] = {}
    flow: tuple[Flow, Participant] | None = None
    match event:
        case ParticipantRegistered(data=data):
            changes = {leaf_of(data.participant): active_counters(data.participant)}
            flow = ("migrations" if data.participant.migrated_from else "enrollments", data.participant)
        case ParticipantUpdated(data=data):
            changes = _moved(data.previous, data.participant)
        case ParticipantTerminated(data=data):
            changes, flow = _moved(data.previous, data.participant), ("terminations", data.participant)
        case ParticipantReactivated(data=data):
            changes, flow = _moved(data.previous, data.participant), ("reactivations", data.participant)
        case RequestRejected(data=data):
            counters: Counters = {REJECTIONS: 1, f"{REJECTION_PARTNER}/{data.partner_id}": 1}
            for code in {reason.code for reason in data.reasons}:
                counters[f"{REJECTION_REASON}/{code}"] = 1
            changes = {data.region_code or NATIONAL_CODE: counters}
        case RequestHeld(data=data):
            day = business_date(event.time)
            changes = {
                data.region_code: {
                    flow_key("holds"): 1,
                    flow_key("holds", day_period(day)): 1,
                    flow_key("holds", month_period(day)): 1,
                }
            }
        case _:
            # A verdict on a held request counts nothing itself: the request's own outcome follows
            # (registered after an approval, rejected with HOLD_REFUSED after a refusal).
            pass
    if flow is not None:
        # A flow is counted where the participation is after the change, on the event's WIB date.
        kind, participant = flow
        day = business_date(event.time)
        add_into(
            changes.setdefault(leaf_of(participant), {}),
            {flow_key(kind): 1, flow_key(kind, day_period(day)): 1, flow_key(kind, month_period(day)): 1},
        )
    return {leaf: delta for leaf, delta in changes.items() if delta}


def expired_periods(counters: Mapping[str, int]) -> list[str]:
    """Day and month counters that can no longer be "today" or "this month".

    Per leaf the window keeps the latest day seen and the one before it (for clocks slightly ahead around
    midnight), and the latest month and the one before it. Older keys go, so the state does not grow with
    time. The rule depends only on which keys are present, so pruning once per batch equals pruning after
    each event.

    It runs for every leaf a batch touched, and almost every leaf holds one day and one month: those return
    after one pass over the names (the pass used to split each flow name and collect a list per flow, a ninth of
    reporting's fold in the CPU benchmark).
    """
    periods = {key.rpartition("/")[2] for key in counters if key.startswith("flow/")}
    days = [period for period in periods if len(period) == _DAY_LENGTH]
    months = [period for period in periods if len(period) == _MONTH_LENGTH]
    expired: list[str] = []
    if len(days) > 1:
        keep_from = (date.fromisoformat(max(days)) - timedelta(days=1)).isoformat()
        expired += [flow_key(f, f"day/{d}") for f in FLOWS for d in days if d < keep_from]
    if len(months) > 1:
        year, month = (int(part) for part in max(months).split("-"))
        keep_month = f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"
        expired += [flow_key(f, f"month/{m}") for f in FLOWS for m in months if m < keep_month]
    return [key for key in expired if key in counters]
