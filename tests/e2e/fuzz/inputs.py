"""The fuzzer's inputs: Hypothesis strategies over the envelope and the request schema, and byte-level
mutations of valid records, each drawn as a plan and built into the bytes, key and headers of one record.

A plan names its family (the summary counts inputs per family) and what to do to which valid record; the
valid records are synthetic requests (some of them breaking a business rule, so rejections with rule codes
come too), each given a request id of its own, so that two inputs name the same request only by accident
of a mutation. Plans are drawn in chunks of `CHUNK` with a seed per chunk: a run of 100,000 inputs never
holds more than a chunk, and `--seed S` replays its mutations (with the same Hypothesis version; the valid
records' dates follow the day of the run).
"""

from __future__ import annotations

import copy
import json
import string
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st

from shared.topics import CHANNEL_HEADER
from synthetic import generate
from tests.e2e.bad_input_corpus import INACTIVE, LIMITED, MAIN, envelope, json_values

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.e2e.fuzz.intake import Headers

CHUNK = 1000
BASES = 200  # valid records to mutate; a tenth of them break a business rule
# Today, not a fixed day: the valid records' coverage must start from now, or every one would be rejected
# for a start in the past. A seed replays the same mutations; the dates in them follow the day of the run.
TODAY = date.today()

# --- What a field, an envelope attribute or a header may become ---------------------------------------------

edge_values: st.SearchStrategy[Any] = st.sampled_from(
    [
        "", "0" * 16, "3271014506900001", "32710145069000011", "１２３４", "1990-02-30", "9999-12-31", "0000-00-00",
        -1, 0, 10**30, 1e308, -0.0, [], {}, None, True, "JKK JKM", ["JKK", "JKK"], ["JKK", 5], "32.71", "99.99",
        "32", "PU", "BPU", "APBD", "ZAKAT", "\u0000", "\ud800", "' OR 1=1 --", "=cmd|' /C calc'!A0", "<script>",
    ]
)  # fmt: skip
field_values = edge_values | json_values | st.text(max_size=60)
sources = st.sampled_from(
    [f"partner/{MAIN}", f"partner/{LIMITED}", f"partner/{INACTIVE}", "partner/mitra-tak-dikenal", "", MAIN, "partner/"]
) | st.text(max_size=40)
envelope_values = {
    "type": st.sampled_from(
        ["id.lindungi.enrollment.requested", "id.lindungi.termination.requested", "id.lindungi.update.requested"]
    )
    | field_values,
    "specversion": st.sampled_from(["1.0", "0.3", "2"]) | field_values,
    "id": field_values,
    "source": sources | field_values,
    "schemaversion": st.sampled_from([1, 2, "1", 0, -1]) | field_values,
    "time": st.sampled_from(["2026-01-01T00:00:00Z", "kemarin", "2026-13-45T99:99:99Z"]) | field_values,
    "subject": field_values,
    "datacontenttype": st.sampled_from(["application/json", "text/plain"]) | field_values,
}
header_keys = st.sampled_from(
    ["ce_id", "ce_type", "ce_source", "content-type", "traceparent", CHANNEL_HEADER]
) | st.text(alphabet=string.ascii_letters + "-_", max_size=20)
garbage_headers = st.lists(st.tuples(header_keys, st.binary(max_size=40)), min_size=1, max_size=5)
channel_headers = st.lists(
    st.tuples(
        st.just(CHANNEL_HEADER),
        st.sampled_from([MAIN.encode(), LIMITED.encode(), b"mitra-tak-dikenal", b"", b"\xff\xfe", b"x" * 300]),
    ),
    min_size=1,
    max_size=2,
)
# Most inputs carry no header, as most partners' producers send none.
headers: st.SearchStrategy[list[tuple[str, bytes]]] = st.one_of(
    st.just([]), st.just([]), st.just([]), garbage_headers, channel_headers
)
fraction = st.floats(min_value=0, max_value=1, exclude_max=True)
base = st.integers(min_value=0, max_value=BASES - 1)

# --- The families ---------------------------------------------------------------------------------------------

small = st.one_of(
    # The request schema: fields of a valid request dropped or replaced with values of any type.
    st.tuples(
        st.just("schema"), base, st.lists(st.tuples(st.booleans(), fraction, field_values), min_size=1, max_size=3)
    ),
    # The envelope: CloudEvents attributes dropped or replaced.
    st.tuples(
        st.just("envelope"),
        base,
        st.lists(
            st.sampled_from(sorted(envelope_values)).flatmap(
                lambda name: st.tuples(st.just(name), st.booleans(), envelope_values[name])  # True: dropped
            ),
            min_size=1,
            max_size=3,
        ),
    ),
    st.tuples(st.just("random bytes"), st.binary(max_size=600)),
    st.tuples(st.just("random JSON"), json_values),
    st.tuples(st.just("truncated"), base, fraction),
    st.tuples(st.just("bit flips"), base, st.lists(st.tuples(fraction, st.integers(1, 255)), min_size=1, max_size=4)),
    st.tuples(
        st.just("invalid UTF-8"),
        base,
        fraction,
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82"]),
    ),
    st.tuples(
        st.just("duplicate keys"),
        base,
        st.sampled_from(["source", "data", "type", "id", "schemaversion"]),
        st.booleans(),  # the duplicate before (the original wins) or after (the duplicate wins)
        field_values | sources,
    ),
    # Depths either side of the parsers' limits (pydantic's ~200, json's ~1,000), never near 1,000 itself,
    # where the two processes' stacks could disagree.
    st.tuples(st.just("deep nesting"), base, st.sampled_from([50, 150, 300, 600, 3000, 20_000]), st.booleans()),
)
# Large records are a few in a hundred, as in life: a run of 100,000 inputs stays a few hundred megabytes.
large = st.one_of(
    st.tuples(
        st.just("huge string"),
        base,
        st.sampled_from(["worker.full_name", "request_id", "worker.nik", "region_code", "programs"]),
        st.sampled_from([1_000, 20_000, 60_000, 70_000, 100_000]),
    ),
    st.tuples(st.just("oversized"), base, st.integers(min_value=65_000, max_value=100_000)),
)
# 13, not 0: Hypothesis draws the bounds of a range far more often than the values inside it.
families = st.integers(min_value=0, max_value=24).flatmap(lambda n: large if n == 13 else small)
plans = st.tuples(families, headers, st.none() | st.binary(min_size=1, max_size=20))


@dataclass(frozen=True)
class Input:
    family: str
    value: bytes
    key: bytes | None
    headers: Headers


def draw(seed: int, count: int) -> list[Any]:
    """`count` plans drawn by Hypothesis under `seed` (generation only: nothing to shrink)."""
    drawn: list[Any] = []

    @seeded(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(plans)
    def collect(plan: Any) -> None:
        drawn.append(plan)

    collect()
    return drawn[:count]


def bases(unique: str) -> list[dict[str, Any]]:
    """The valid records mutated (as JSON bodies, with a placeholder request id replaced per input)."""
    requests = generate(BASES, 4242, today=TODAY, invalid_share=0.1, region_codes=["32.71", "32.01"])
    return [envelope(item.request, f"{unique}-base") for item in requests]


def inputs(unique: str, count: int, seed: int) -> Iterator[Input]:
    """`count` inputs, built chunk by chunk; request ids carry `unique` and the input's number."""
    valid = bases(unique)
    made = 0
    chunk = 0
    while made < count:
        for plan in draw(seed * 100_003 + chunk, min(CHUNK, count - made)):
            (family, *args), head, key = plan
            body = None if family in {"random bytes", "random JSON"} else copy.deepcopy(valid[args[0] % len(valid)])
            if body is not None:
                body["data"]["request_id"] = f"{unique}-{made}"
            yield Input(family, build(family, body, args), key, tuple((k, v) for k, v in head))
            made += 1
        chunk += 1


def build(family: str, body: dict[str, Any] | None, args: list[Any]) -> bytes:
    """The bytes of one input from its plan."""
    if body is None:
        return bytes(args[0]) if family == "random bytes" else encode(args[0])
    return _BUILDERS[family](body, *args[1:])


def _schema(body: dict[str, Any], steps: list[tuple[bool, float, Any]]) -> bytes:
    return encode(replaced(body, "data", steps))


def _envelope(body: dict[str, Any], changes: list[tuple[str, bool, Any]]) -> bytes:
    for name, drop, value in changes:
        if drop:
            body.pop(name, None)
        else:
            body[name] = value
    return encode(body)


def _truncated(body: dict[str, Any], cut: float) -> bytes:
    valid = encode(body)
    return valid[: int(cut * len(valid))]


def _bit_flips(body: dict[str, Any], flips: list[tuple[float, int]]) -> bytes:
    flipped = bytearray(encode(body))
    for where, mask in flips:
        flipped[int(where * len(flipped))] ^= mask
    return bytes(flipped)


def _invalid_utf8(body: dict[str, Any], where: float, bad: bytes) -> bytes:
    valid = encode(body)
    at = int(where * len(valid))
    return valid[:at] + bad + valid[at:]


def _duplicate_key(body: dict[str, Any], name: str, before: bool, value: Any) -> bytes:  # noqa: FBT001 - drawn
    valid = encode(body)
    duplicate = json.dumps(name).encode() + b": " + encode(value)
    return b"{" + duplicate + b", " + valid[1:] if before else valid[:-1] + b", " + duplicate + b"}"


def _deep_nesting(body: dict[str, Any], depth: int, whole: bool) -> bytes:  # noqa: FBT001 - drawn
    nested = b"[" * depth + b"1" + b"]" * depth
    if whole:
        return nested
    return encode(body).replace(b'"full_name": ', b'"full_name": ' + nested + b', "x": ', 1)


def _huge_string(body: dict[str, Any], path: str, size: int) -> bytes:
    target = body["data"]
    *parents, last = path.split(".")
    for step in parents:
        target = target[step]
    target[last] = "A" * size
    return encode(body)


def _oversized(body: dict[str, Any], size: int) -> bytes:
    body["data"]["padding"] = "x" * size  # a valid request padded past the record limit
    return encode(body)


_BUILDERS: dict[str, Callable[..., bytes]] = {
    "schema": _schema,
    "envelope": _envelope,
    "truncated": _truncated,
    "bit flips": _bit_flips,
    "invalid UTF-8": _invalid_utf8,
    "duplicate keys": _duplicate_key,
    "deep nesting": _deep_nesting,
    "huge string": _huge_string,
    "oversized": _oversized,
}


def encode(value: Any) -> bytes:
    # surrogatepass: Hypothesis' text holds lone surrogates, which then reach the wire as invalid UTF-8.
    return json.dumps(value).encode("utf-8", "surrogatepass")


def _paths(value: Any, prefix: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def replaced(body: dict[str, Any], under: str, steps: list[tuple[bool, float, Any]]) -> dict[str, Any]:
    """`body` with fields under `under` dropped (True) or replaced, each at a place chosen by a fraction."""
    for drop, where, value in steps:
        paths = list(_paths(body[under], (under,)))
        if not paths:
            break
        *parents, last = paths[int(where * len(paths))]
        target: Any = body
        for step in parents:
            target = target[step]
        if drop and isinstance(target, dict):
            del target[last]
        else:
            # A copy: `edge_values` hands out the same list and dict objects again and again.
            target[last] = copy.deepcopy(value)
    return body
