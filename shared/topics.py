"""The topic catalogue: every Kafka topic Lindungi uses, in one place.

The catalogue is the source for topic creation (tests, the native run, the compose job), for the docs and for
the services' subscriptions. Partition counts bound how many instances of a consumer group share the work:
growth beyond one machine is more partitions, not a mechanism of our own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    partitions: int
    config: dict[str, str]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    events: tuple[str, ...]
    description: str
    personal_data: bool = False
    extra: dict[str, str] = field(default_factory=dict)


ENROLLMENT_REQUESTS = Topic(
    name="lindungi.enrollment.requests.v1",
    key="the worker's NIK, so one worker's requests stay ordered whichever partner sends them",
    partitions=12,
    # Intake carries NIKs in clear: keep it only as long as reprocessing needs (7 days).
    config={"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS), "max.message.bytes": "1048576"},
    # Partners write their own topics (below); registration forwards their requests here.
    producers=("registration", "trusted bulk producers"),
    consumers=("registration",),
    events=(
        "id.lindungi.enrollment.requested",
        "id.lindungi.update.requested",
        "id.lindungi.termination.requested",
        "id.lindungi.reactivation.requested",
        "id.lindungi.budget.allocation.requested",
        "id.lindungi.hold.decision.requested",
    ),
    description="Partners' enrollment, update, termination and reactivation requests, keyed by NIK, and finance "
    "offices' allocations and verdicts on held requests, keyed by the budget; a request forwarded from a partner's "
    "own topic carries the `lindungi-partner` header.",
    personal_data=True,
)

ENROLLMENT_OUTCOMES = Topic(
    name="lindungi.enrollment.outcomes.v1",
    key="the participant's keyed NIK hash (rejections without a NIK: the partner id)",
    partitions=12,
    # Kept forever: reporting rebuilds its aggregates from the start of this topic.
    config={"cleanup.policy": "delete", "retention.ms": "-1"},
    producers=("registration",),
    consumers=("reporting", "notification", "partners (their own outcomes)"),
    events=(
        "id.lindungi.participant.registered",
        "id.lindungi.participant.updated",
        "id.lindungi.participant.terminated",
        "id.lindungi.participant.reactivated",
        "id.lindungi.request.rejected",
        "id.lindungi.request.held",
        "id.lindungi.hold.decided",
    ),
    description="One outcome per request: registered, updated, terminated, reactivated, rejected or held "
    "(budget exhausted), and each verdict on a held request.",
)

DEAD_LETTERS = Topic(
    name="lindungi.deadletters.v1",
    key="source topic:partition:offset",
    partitions=3,
    config={"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    producers=("registration", "reporting", "notification"),
    consumers=("operators (lindungi dlq)",),
    events=("id.lindungi.deadletter.recorded",),
    description="Records no handler could decode or accept, sealed, with the error; replayable.",
)

BUDGET_POSITIONS = Topic(
    name="lindungi.budget.v1",
    key="the budget: `region|fiscal year|source`, e.g. `32.71|2027|APBD`",
    partitions=3,
    # Compacted: the latest position and allocation per budget is what a reader needs from the start; the
    # allocation versions stay in registration's store.
    config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", "segment.ms": str(DAY_MS)},
    producers=("registration",),
    consumers=("reporting", "notification", "regional finance and planning offices"),
    events=("id.lindungi.budget.allocation.recorded", "id.lindungi.budget.position.changed"),
    description="Each APBD/APBDes budget's allocation versions and where it stands after every reservation, "
    "release and hold: amounts only, never a person.",
)

REGION_AGGREGATES = Topic(
    name="lindungi.region.aggregates.v1",
    key="region code (`ID` for the nation)",
    partitions=6,
    # Compacted: the latest snapshot per region is the table a dashboard reads from the start.
    config={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", "segment.ms": str(DAY_MS)},
    producers=("reporting",),
    consumers=("notification", "dashboards", "regional planning agencies", "BPJS"),
    events=("id.lindungi.region.aggregate.updated",),
    description="Latest per-region coverage snapshot: aggregates only, never a person.",
)

NOTIFICATION_DELIVERIES = Topic(
    name="lindungi.notification.deliveries.v1",
    key="source event id",
    partitions=6,
    config={"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    producers=("notification",),
    consumers=("operators",),
    events=("id.lindungi.notification.delivered", "id.lindungi.notification.failed"),
    description="What was sent to whom through which channel, and final failures.",
)

CATALOGUE: tuple[Topic, ...] = (
    ENROLLMENT_REQUESTS,
    ENROLLMENT_OUTCOMES,
    DEAD_LETTERS,
    BUDGET_POSITIONS,
    REGION_AGGREGATES,
    NOTIFICATION_DELIVERIES,
)


# --- Each partner's own channel -------------------------------------------------------------------------------
# Kafka's ACLs bind a topic to a principal, not a record to one: so each partner writes its requests to a topic
# only it may write, and reads its outcomes from a topic only it may read. Registration takes the partner from
# the topic a request arrived on, never from the payload (docs/security.md).

#: Every partner topic starts with this: one prefixed ACL gives registration all of them.
PARTNER_TOPIC_PREFIX = "lindungi.partner."
#: Partner ids as registration accepts them (lowercase, digits, '-', no '.'): a partner's names never nest.
PARTNER_ID_REGEX = "[a-z0-9][a-z0-9-]*"
PARTNER_REQUESTS_SUFFIX = ".requests.v1"
PARTNER_OUTCOMES_SUFFIX = ".outcomes.v1"
#: The header registration stamps on a request it forwards from a partner's topic to the intake topic.
CHANNEL_HEADER = "lindungi-partner"
#: The header on a held request registration sends back to intake with a second principal's verdict.
VERDICT_HEADER = "lindungi-verdict"


def partner_requests_topic(partner_id: str, prefix: str = PARTNER_TOPIC_PREFIX) -> str:
    return f"{prefix}{partner_id}{PARTNER_REQUESTS_SUFFIX}"


def partner_outcomes_topic(partner_id: str, prefix: str = PARTNER_TOPIC_PREFIX) -> str:
    return f"{prefix}{partner_id}{PARTNER_OUTCOMES_SUFFIX}"


def partner_requests_pattern(prefix: str = PARTNER_TOPIC_PREFIX) -> re.Pattern[str]:
    """Matches every partner's request topic and captures the partner id."""
    return re.compile(f"^{re.escape(prefix)}(?P<partner>{PARTNER_ID_REGEX}){re.escape(PARTNER_REQUESTS_SUFFIX)}$")


def partner_topic(partner_id: str, *, requests: bool, prefix: str = PARTNER_TOPIC_PREFIX) -> Topic:
    """A partner's request or outcome topic, configured like the shared topic it feeds or copies."""
    if requests:
        return Topic(
            name=partner_requests_topic(partner_id, prefix),
            key=ENROLLMENT_REQUESTS.key,
            partitions=3,
            config=dict(ENROLLMENT_REQUESTS.config),
            producers=(f"partner {partner_id}",),
            consumers=("registration (forwards to the intake topic)",),
            events=ENROLLMENT_REQUESTS.events,
            description=f"Partner {partner_id}'s requests; only it may write here.",
            personal_data=True,
        )
    return Topic(
        name=partner_outcomes_topic(partner_id, prefix),
        key=ENROLLMENT_OUTCOMES.key,
        partitions=3,
        # 30 days: long enough for a partner system that was down to catch up.
        config={"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
        producers=("registration",),
        consumers=(f"partner {partner_id}",),
        events=ENROLLMENT_OUTCOMES.events,
        description=f"Copies of the outcomes of partner {partner_id}'s requests, for it alone.",
    )


def by_name(name: str) -> Topic:
    for topic in CATALOGUE:
        if topic.name == name:
            return topic
    raise KeyError(name)


def markdown_table() -> str:
    """The catalogue as the table in docs/topics.md."""
    rows = [
        "| topic | key | partitions | retention / compaction | producers | consumers | events |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in CATALOGUE:
        policy = ", ".join(f"`{k}={v}`" for k, v in t.config.items())
        rows.append(
            f"| `{t.name}` | {t.key} | {t.partitions} | {policy} | {', '.join(t.producers)} "
            f"| {', '.join(t.consumers)} | {'<br>'.join(f'`{e}`' for e in t.events)} |"
        )
    return "\n".join(rows) + "\n"
