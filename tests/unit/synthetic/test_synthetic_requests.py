"""Synthetic requests: reproducible, realistic, and labelled with exactly what the rules say."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registration.domain.contributions import calculate
from services.registration.domain.rules import FUNDING, assess_enrollment, validate_enrollment
from shared.events import Category, EnrollmentRequest, FundingSource, Segment
from shared.regions import load_regions
from synthetic import (
    GENERATED_CODES,
    PROFILES,
    generate,
    generate_dicts,
    generate_json,
)

if TYPE_CHECKING:
    from shared.reasons import ReasonCode
    from shared.regions import Regions

TODAY = date(2025, 11, 24)
_REGIONS = load_regions()


def test_the_same_seed_gives_the_same_requests(regions: Regions) -> None:
    def run(seed: int) -> list[object]:
        return [
            item.data
            for item in generate_dicts(300, seed, today=TODAY, invalid_share=0.3, duplicate_share=0.1, regions=regions)
        ]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_request_ids_follow_from_seed_and_position(regions: Regions) -> None:
    ids = [item.data["request_id"] for item in generate_dicts(3, 42, today=TODAY, regions=regions)]
    assert ids == ["syn-42-00000000", "syn-42-00000001", "syn-42-00000002"]


def test_valid_requests_validate_clean(regions: Regions) -> None:
    for item in generate(2000, 1, today=TODAY, regions=regions):
        assert item.valid
        assessment = assess_enrollment(item.request, TODAY, regions)
        assert assessment.violations == (), item.request.request_id
        assert assessment.warnings == ()
        assert assessment.nik is not None
        assert assessment.nik.regency_city_code == item.request.region_code  # a real kecamatan of the region
        calculate(item.request, item.request.coverage_start)  # every valid request can be priced


def test_every_label_is_exactly_what_the_rules_find(regions: Regions) -> None:
    seen: Counter[ReasonCode] = Counter()
    for item in generate(4000, 2, today=TODAY, invalid_share=0.6, duplicate_share=0.05, regions=regions):
        found = tuple(sorted(v.code for v in validate_enrollment(item.request, TODAY, regions)))
        assert found == item.expected, (item.request.request_id, item.expected, found)
        seen.update(item.expected)
    assert set(seen) == GENERATED_CODES, "every kind of invalid request turns up"


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_labels_hold_for_any_seed(seed: int) -> None:
    for item in generate(60, seed, today=TODAY, invalid_share=0.7, regions=_REGIONS):
        found = tuple(sorted(v.code for v in validate_enrollment(item.request, TODAY, _REGIONS)))
        assert found == item.expected


def test_some_invalid_requests_break_two_rules(regions: Regions) -> None:
    sizes = Counter(len(i.expected) for i in generate_dicts(2000, 3, today=TODAY, invalid_share=1.0, regions=regions))
    assert sizes[1] > sizes[2] > 0
    assert set(sizes) == {1, 2}


def test_duplicates_are_re_sends_of_recent_requests(regions: Regions) -> None:
    items = list(generate(3000, 4, today=TODAY, invalid_share=0.2, duplicate_share=0.1, regions=regions))
    first_seen: dict[str, EnrollmentRequest] = {}
    duplicates = 0
    for item in items:
        request_id = item.request.request_id
        if item.is_duplicate:
            duplicates += 1
            assert item.request is first_seen[request_id]
        else:
            assert request_id not in first_seen
            first_seen[request_id] = item.request
    assert 200 < duplicates < 400
    assert len(items) == 3000


def test_no_two_workers_share_a_nik(regions: Regions) -> None:
    niks = [i.data["worker"]["nik"] for i in generate_dicts(20_000, 5, today=TODAY, regions=regions)]
    assert len(set(niks)) == len(niks)


def test_dicts_and_json_carry_the_same_requests(regions: Regions) -> None:
    models = [i.request for i in generate(500, 6, today=TODAY, invalid_share=0.3, duplicate_share=0.1, regions=regions)]
    dicts = [
        i.data for i in generate_dicts(500, 6, today=TODAY, invalid_share=0.3, duplicate_share=0.1, regions=regions)
    ]
    blobs = list(generate_json(500, 6, today=TODAY, invalid_share=0.3, duplicate_share=0.1, regions=regions))
    assert models == [EnrollmentRequest.model_validate(d) for d in dicts]
    assert [json.loads(b) for b in blobs] == dicts


def test_requests_can_be_restricted_to_regions(regions: Regions) -> None:
    items = list(generate_dicts(500, 7, today=TODAY, regions=regions, region_codes=["32", "31.71"]))
    assert {i.data["region_code"][:2] for i in items} == {"31", "32"}
    assert all(i.data["region_code"] == "31.71" for i in items if i.data["region_code"].startswith("31"))
    assert all(i.data["worker"]["nik"].startswith(i.data["region_code"].replace(".", "")) for i in items)


def test_the_mix_looks_like_a_regions_enrollment(regions: Regions) -> None:
    items = [i.data for i in generate_dicts(20_000, 8, today=TODAY, regions=regions)]
    kinds = Counter((d["segment"], d["category"]) for d in items)
    funding = Counter(d["funding_source"] for d in items)
    provinces = Counter(d["region_code"][:2] for d in items)
    assert kinds.most_common(1)[0][0] == ("BPU", "VULNERABLE")
    assert all(kinds[(p.segment.value, p.category.value)] > 0 for p in PROFILES)
    assert funding.most_common(1)[0][0] == "APBD"
    # Population-weighted: Jawa Barat has about 18 % of Indonesians, Papua Pegunungan well under 1 %.
    assert 0.14 < provinces["32"] / len(items) < 0.22
    assert provinces["95"] / len(items) < 0.01
    bpu_standard = sum(1 for d in items if d["category"] == "VULNERABLE" and d["declared_income"] == 1_000_000)
    assert bpu_standard / kinds[("BPU", "VULNERABLE")] > 0.8


def test_profiles_only_use_allowed_funding() -> None:
    for profile in PROFILES:
        for source, _ in profile.funding:
            assert source in FUNDING[(profile.segment, profile.category)]
    assert sum(p.weight for p in PROFILES) == pytest.approx(1.0)


def test_a_large_run_is_quick_enough_to_benchmark_with(regions: Regions) -> None:
    # A sanity check, not a timing assertion: 50,000 requests complete and look right.
    count = sum(1 for _ in generate_dicts(50_000, 9, today=TODAY, invalid_share=0.05, regions=regions))
    assert count == 50_000


def test_generated_segments_and_categories_agree(regions: Regions) -> None:
    for item in generate_dicts(1000, 10, today=TODAY, regions=regions):
        segment, category = Segment(item.data["segment"]), Category(item.data["category"])
        assert FundingSource(item.data["funding_source"]) in FUNDING[(segment, category)]
