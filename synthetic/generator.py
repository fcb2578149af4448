"""What the generator yields, and its three entry points over one seeded stream of requests.

Speed: records are built as JSON-ready dicts; `generate` validates each into an `EnrollmentRequest` (pydantic
validation of a dict is faster than `model_construct` of nested models, and proves the output fits the
schema); `generate_dicts` and `generate_json` skip the models for benchmarks.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.events import EnrollmentRequest
from shared.reasons import ReasonCode
from shared.regions import Regions, load_regions
from synthetic.drafts import Maker, World
from synthetic.mutations import spoil

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator


class LabelledRequest(NamedTuple):
    """A request and the reason codes the rules must find for it (none for a valid request)."""

    request: EnrollmentRequest
    expected: tuple[ReasonCode, ...]
    is_duplicate: bool = False

    @property
    def valid(self) -> bool:
        return not self.expected


class LabelledData(NamedTuple):
    """The same as `LabelledRequest`, with the request as a JSON-ready dict of `EnrollmentRequest` fields."""

    data: dict[str, Any]
    expected: tuple[ReasonCode, ...]
    is_duplicate: bool = False


#: A re-send repeats one of the last RECENT original requests, as a partner's retry would.
RECENT = 1024


def generate(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[LabelledRequest]:
    """`n` labelled requests (re-sends included in `n`). `region_codes` (any level) restricts where workers
    are enrolled; `today` is the date the rules will validate them on."""
    validate = EnrollmentRequest.model_validate
    # A re-send reuses the model of its first sending; only the last RECENT originals can be re-sent.
    models: OrderedDict[str, EnrollmentRequest] = OrderedDict()
    for item in generate_dicts(
        n,
        seed,
        today=today,
        invalid_share=invalid_share,
        duplicate_share=duplicate_share,
        regions=regions,
        region_codes=region_codes,
    ):
        request_id = item.data["request_id"]
        if item.is_duplicate:
            yield LabelledRequest(models[request_id], item.expected, is_duplicate=True)
            continue
        request = validate(item.data)
        if duplicate_share:
            models[request_id] = request
            if len(models) > RECENT:
                models.popitem(last=False)
        yield LabelledRequest(request, item.expected)


def generate_json(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[bytes]:
    """The requests alone as compact UTF-8 JSON, in the same sequence as `generate` for the same seed."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for item in generate_dicts(
        n,
        seed,
        today=today,
        invalid_share=invalid_share,
        duplicate_share=duplicate_share,
        regions=regions,
        region_codes=region_codes,
    ):
        yield dumps(item.data).encode()


def generate_dicts(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[LabelledData]:
    """The fast path: labelled JSON-ready dicts that validate into the requests of `generate`.

    A re-send shares its original's dict: treat the dicts as read-only.
    """
    if not 0.0 <= invalid_share <= 1.0 or not 0.0 <= duplicate_share < 1.0:
        raise ValueError("invalid_share must be in [0, 1] and duplicate_share in [0, 1)")
    world = World(regions if regions is not None else load_regions(), region_codes)
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not secrets
    maker = Maker(world, rng, seed, today)
    random_ = rng.random
    recent: list[LabelledData] = []  # the last RECENT originals, among which a re-send is picked
    originals = 0
    for index in range(n):
        if recent and random_() < duplicate_share:
            original = recent[int(random_() * len(recent))]
            yield LabelledData(original.data, original.expected, is_duplicate=True)
            continue
        # The order of draws is the output: whether to spoil, the facts, the spoiling, then name and contact.
        invalid = random_() < invalid_share
        draft = maker.draft()
        expected = spoil(maker, draft) if invalid else ()
        item = LabelledData(maker.to_dict(draft, index), expected)
        if duplicate_share:
            if len(recent) < RECENT:
                recent.append(item)
            else:
                recent[originals % RECENT] = item
            originals += 1
        yield item
