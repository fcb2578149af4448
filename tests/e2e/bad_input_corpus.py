"""The bad-input corpus of tests/e2e/test_bad_input.py: the partners it is written for, one record for each way
a partner's message can be wrong (made by hand), and a bounded hypothesis corpus (random bytes, random JSON,
mutated valid requests), each record with what registration must make of it where the corpus knows it.

One module: both corpora are built from the same partners and envelopes, and go out as one stream.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared import events as ev
from shared.reasons import ReasonCode
from shared.regions import load_regions
from synthetic import GENERATED_CODES, LabelledRequest, generate
from tests.e2e.fuzz.intake import MAX_MESSAGE_BYTES, Fate
from tests.e2e.reliability import WIB, authority

if TYPE_CHECKING:
    from collections.abc import Iterator

R = ReasonCode
REGIONS = load_regions()
MAIN, LIMITED, INACTIVE = "mitra-uji", "mitra-terbatas", "mitra-nonaktif"
PARTNERS: list[dict[str, Any]] = [
    {
        "partner_id": MAIN,
        "name": "Mitra uji",
        "regions": ["31", "32", "36"],
        "segments": [s.value for s in ev.Segment],
        "funding_sources": [f.value for f in ev.FundingSource],
    },
    {
        # Kota Bogor only, BPU only, APBD only.
        "partner_id": LIMITED,
        "name": "Mitra terbatas",
        "regions": ["32.71"],
        "segments": ["BPU"],
        "funding_sources": ["APBD"],
    },
    {
        "partner_id": INACTIVE,
        "name": "Mitra nonaktif",
        "regions": ["32"],
        "segments": [s.value for s in ev.Segment],
        "funding_sources": [f.value for f in ev.FundingSource],
        "active": False,
    },
]

# --- A record of the corpus and what must become of it --------------------------------------------------------


@dataclass
class Case:
    """One record and, where the corpus knows it, what registration must make of it."""

    name: str
    value: bytes | None
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = ()
    outcome: str | None = None  # `registered`, `rejected`, ...; None: any outcome (hypothesis)
    codes: frozenset[str] | None = None  # a rejection's exact reason codes, where known
    dead: str | None = None  # the dead letter's error type, where the record cannot be answered
    partition: int = -1
    offset: int = -1
    fate: Fate = field(default=("dead", ""))


# --- The hand-made corpus -------------------------------------------------------------------------------------


def valid_requests() -> Iterator[LabelledRequest]:
    today = datetime.now(WIB).date()
    return generate(3000, 909, today=today, region_codes=["32.71", "32.01"])


def pick(**wanted: Any) -> ev.EnrollmentRequest:
    """A valid request with these fields (segment, funding source, region)."""
    for item in valid_requests():
        request = item.request
        if all(getattr(request, name) == value for name, value in wanted.items()):
            return request
    raise LookupError(wanted)


def envelope(request: ev.EnrollmentRequest, request_id: str, partner: str = MAIN) -> dict[str, Any]:
    data = request.model_copy(update={"request_id": request_id})
    event = ev.EnrollmentRequested(id=f"id-{request_id}", source=f"partner/{partner}", subject=request_id, data=data)
    return event.model_dump(mode="json")


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def altered(body: dict[str, Any], path: str, value: Any = ..., *, drop: bool = False) -> dict[str, Any]:
    """A copy with one field (dotted path) set to `value`, or dropped."""
    changed = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = changed
    for step in parents:
        target = target[step]
    if drop:
        del target[last]
    else:
        target[last] = value
    return changed


def lifecycle(kind: str, request_id: str, nik: str, segment: ev.Segment, partner: str = MAIN) -> bytes:
    today = datetime.now(WIB).date()
    data: Any
    model: type[ev.CloudEvent[Any]]
    if kind == "terminate":
        model = ev.TerminationRequested
        data = ev.TerminationRequest(
            request_id=request_id,
            nik=nik,
            segment=segment,
            reason=ev.TerminationReason.RESIGNED,
            effective_date=today + timedelta(days=40),  # after any coverage start the generator draws
        )
    elif kind == "update":
        model = ev.UpdateRequested
        data = ev.UpdateRequest(  # a real change for a BPU worker: a higher declared income
            request_id=request_id,
            nik=nik,
            segment=segment,
            declared_income=2_000_000,
            effective_date=today + timedelta(days=40),
        )
    else:
        model = ev.ReactivationRequested
        data = ev.ReactivationRequest(request_id=request_id, nik=nik, segment=segment, effective_date=today)
    return (
        model(id=f"id-{request_id}", source=f"partner/{partner}", subject=request_id, data=data)
        .model_dump_json()
        .encode()
    )


def broken_envelopes(u: str) -> list[Case]:
    base = envelope(pick(region_code="32.71"), f"{u}-base")
    valid = encoded(base)
    schema = frozenset({R.SCHEMA_INVALID.value})

    def rejected(name: str, body: Any, codes: frozenset[str] = schema) -> Case:
        body = altered(body, "data.request_id", f"{u}-{name}")
        return Case(name, encoded(body), outcome="rejected", codes=codes)

    def dead(name: str, value: bytes | None, error: str) -> Case:
        return Case(name, value, dead=error)

    too_large = altered(base, "data.worker.full_name", "A" * (MAX_MESSAGE_BYTES + 10))
    bad_utf8 = encoded(altered(base, "data.request_id", f"{u}-bad-utf8")).replace(
        b'"full_name": "', b'"full_name": "\xff'
    )
    return [
        dead("not JSON, with a NIK in it", b"\x00\xffbukan JSON 3271014506900001", "NotJson"),
        dead("empty value", b"", "NotJson"),
        dead("tombstone (no value)", None, "NotJson"),
        dead("truncated JSON", valid[: len(valid) // 2], "NotJson"),
        dead("invalid UTF-8 inside a string", bad_utf8, "NotJson"),
        dead("a JSON array", b"[1, 2, 3]", "SchemaInvalid"),
        dead("a JSON string", b'"permintaan"', "SchemaInvalid"),
        dead("JSON null", b"null", "SchemaInvalid"),
        dead("a JSON number", b"42", "SchemaInvalid"),
        dead("larger than the limit", encoded(altered(too_large, "data.request_id", f"{u}-huge")), "MessageTooLarge"),
        dead("no request id", encoded(altered(base, "data.request_id", drop=True)), "SchemaInvalid"),
        dead("request id not a string", encoded(altered(base, "data.request_id", 7)), "SchemaInvalid"),
        dead(
            "no source",
            encoded(altered(altered(base, "source", drop=True), "data.request_id", f"{u}-s")),
            "SchemaInvalid",
        ),
        dead("data not an object", encoded(altered(base, "data", [])), "SchemaInvalid"),
        rejected("a long field under the limit", altered(base, "data.worker.full_name", "A" * 20_000)),
        rejected("worker of the wrong type", altered(base, "data.worker", 5)),
        rejected("programs of the wrong type", altered(base, "data.programs", "JKK")),
        rejected("income in words", altered(base, "data.declared_income", "satu juta")),
        rejected("a date that is no date", altered(base, "data.coverage_start", "kemarin")),
        rejected("NIK as a number", altered(base, "data.worker.nik", 3271014506900001)),
        rejected("no worker", altered(base, "data.worker", drop=True)),
        rejected("no segment", altered(base, "data.segment", drop=True)),
        rejected("an unknown field", altered(base, "data.bonus", 1)),
        rejected("event id of the wrong type", altered(base, "id", 5)),
        rejected(
            "an unknown event type",
            altered(base, "type", "id.lindungi.enrollment.exploded"),
            frozenset({R.EVENT_TYPE_UNKNOWN.value}),
        ),
        rejected(
            "an unknown schema version",
            altered(base, "schemaversion", 2),
            frozenset({R.SCHEMA_VERSION_UNSUPPORTED.value}),
        ),
    ]


def broken_rules(u: str) -> list[Case]:
    """One request for every rule the generator knows how to break (labelled with exactly the codes the
    rules give), plus what the partner's authority adds."""
    today = datetime.now(WIB).date()
    cases: list[Case] = []
    seen: set[str] = set()
    for item in generate(3000, 911, today=today, invalid_share=1.0, region_codes=["32.71", "32.01"]):
        new = {c.value for c in item.expected} - seen
        if not new:
            continue
        seen |= new
        request = item.request.model_copy(update={"request_id": f"{u}-rule-{len(cases)}"})
        codes = {c.value for c in item.expected} | authority(MAIN, request, REGIONS, PARTNERS)
        event = ev.EnrollmentRequested(source=f"partner/{MAIN}", subject=request.request_id, data=request)
        cases.append(
            Case(
                f"breaks {sorted(new)}",
                event.model_dump_json().encode(),
                key=request.worker.nik.encode(),
                outcome="rejected",
                codes=frozenset(codes),
            )
        )
    assert seen == {c.value for c in GENERATED_CODES}
    return cases


def partners_authority(u: str) -> list[Case]:
    """Who may submit what: unknown and inactive partners, and a partner outside its authority."""
    bpu_apbd_bogor = pick(region_code="32.71", segment=ev.Segment.BPU, funding_source=ev.FundingSource.APBD)
    bpu_apbd_kabupaten = pick(region_code="32.01", segment=ev.Segment.BPU, funding_source=ev.FundingSource.APBD)
    pu_bogor = pick(region_code="32.71", segment=ev.Segment.PU)
    bpu_self_bogor = pick(region_code="32.71", segment=ev.Segment.BPU, funding_source=ev.FundingSource.SELF)
    cases = []
    for name, request, partner in [
        ("a partner registration does not know", bpu_apbd_bogor, "mitra-tak-dikenal"),
        ("an inactive partner", bpu_apbd_bogor, INACTIVE),
        ("outside the partner's regions", bpu_apbd_kabupaten, LIMITED),
        ("outside the partner's segments", pu_bogor, LIMITED),
        ("outside the partner's funding sources", bpu_self_bogor, LIMITED),
    ]:
        request_id = f"{u}-authority-{len(cases)}"
        codes = frozenset(authority(partner, request, REGIONS, PARTNERS))
        assert codes, name
        cases.append(
            Case(
                name,
                encoded(envelope(request, request_id, partner)),
                key=request.worker.nik.encode(),
                outcome="rejected",
                codes=codes,
            )
        )
    allowed = f"{u}-authority-allowed"
    cases.append(
        Case(
            "within the partner's authority",
            encoded(envelope(bpu_apbd_bogor, allowed, LIMITED)),
            key=bpu_apbd_bogor.worker.nik.encode(),
            outcome="registered",
        )
    )
    return cases


def out_of_order_and_replayed(u: str) -> list[Case]:
    """One worker's requests in an order no partner should send them, and requests sent again."""
    worker = pick(region_code="32.01", segment=ev.Segment.BPU, funding_source=ev.FundingSource.APBD)
    nik, segment, key = worker.worker.nik, worker.segment, worker.worker.nik.encode()
    unknown = frozenset({R.PARTICIPANT_UNKNOWN.value})
    active = frozenset({R.PARTICIPANT_ALREADY_ACTIVE.value})
    inactive = frozenset({R.PARTICIPANT_NOT_ACTIVE.value})
    enrollment = encoded(envelope(worker, f"{u}-enroll"))
    other = pick(region_code="32.71", segment=ev.Segment.PU)
    steps: list[tuple[str, bytes, str, frozenset[str] | None]] = [
        ("termination before any enrollment", lifecycle("terminate", f"{u}-t0", nik, segment), "rejected", unknown),
        ("update before any enrollment", lifecycle("update", f"{u}-u0", nik, segment), "rejected", unknown),
        ("reactivation before any enrollment", lifecycle("reactivate", f"{u}-r0", nik, segment), "rejected", unknown),
        ("the enrollment", enrollment, "registered", None),
        ("the same enrollment event again", enrollment, "registered", None),
        (
            "the same request id with other content",
            encoded(envelope(other, f"{u}-enroll")),  # answered from the request log: the first answer
            "registered",
            None,
        ),
        ("a second enrollment while active", encoded(envelope(worker, f"{u}-enroll-2")), "rejected", active),
        ("reactivation while active", lifecycle("reactivate", f"{u}-r1", nik, segment), "rejected", active),
        (
            "termination by a partner without authority there",
            lifecycle("terminate", f"{u}-t-limited", nik, segment, LIMITED),
            "rejected",
            frozenset({R.PARTNER_REGION_NOT_ALLOWED.value}),
        ),
        ("the termination", lifecycle("terminate", f"{u}-t1", nik, segment), "terminated", None),
        (
            "the termination again, another request",
            lifecycle("terminate", f"{u}-t2", nik, segment),
            "rejected",
            inactive,
        ),
        ("update while terminated", lifecycle("update", f"{u}-u1", nik, segment), "rejected", inactive),
        ("the reactivation", lifecycle("reactivate", f"{u}-r2", nik, segment), "reactivated", None),
        ("the termination replayed", lifecycle("terminate", f"{u}-t1", nik, segment), "terminated", None),
    ]
    return [Case(name, value, key=key, outcome=outcome, codes=codes) for name, value, outcome, codes in steps]


def hand_made(u: str) -> list[Case]:
    return [*broken_envelopes(u), *broken_rules(u), *partners_authority(u), *out_of_order_and_replayed(u)]


# --- The generated corpus -------------------------------------------------------------------------------------

_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# A change to a valid request: drop or replace the field at a random place (chosen when applied).
changes = st.tuples(
    st.sampled_from(["drop", "replace"]), st.floats(min_value=0, max_value=1, exclude_max=True), json_values
)
corpus_items = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=400)),
    st.tuples(st.just("json"), json_values),
    st.tuples(
        st.just("mutated"),
        st.tuples(
            st.lists(changes, min_size=1, max_size=3),
            st.none() | st.floats(min_value=0, max_value=1, exclude_max=True),  # truncated at that fraction
        ),
    ),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def mutate(body: dict[str, Any], steps: list[tuple[str, float, Any]]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    for operation, where, value in steps:
        paths = list(_paths(changed))
        *parents, last = paths[int(where * len(paths))]
        target: Any = changed
        for step in parents:
            target = target[step]
        if operation == "drop" and isinstance(target, dict):
            del target[last]
        else:
            target[last] = value
    return changed


def generated(u: str, count: int = 150) -> list[Case]:
    """A bounded, reproducible hypothesis corpus (derandomized: the same in every CI run)."""
    drawn: list[tuple[str, Any]] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(corpus_items)
    def collect(item: tuple[str, Any]) -> None:
        drawn.append(item)

    collect()
    bases = [item.request for item in generate(20, 913, today=date.today(), region_codes=["32.71"])]
    cases = []
    for i, (kind, content) in enumerate(drawn):
        name = f"hypothesis {kind} #{i}"
        if kind == "bytes":
            value = content
        elif kind == "json":
            value = json.dumps(content).encode("utf-8", "surrogatepass")
        else:
            steps, cut = content
            body = mutate(envelope(bases[i % len(bases)], f"{u}-h{i}"), steps)
            value = json.dumps(body).encode("utf-8", "surrogatepass")
            if cut is not None:
                value = value[: int(cut * len(value))]
        cases.append(Case(name, value, key=f"h{i % 7}".encode()))
    return cases
