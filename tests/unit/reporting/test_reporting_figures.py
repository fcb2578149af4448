"""Figures, pure: coverage denominators and targets, the barometer, suppression, CSV, targets files."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.counters import ACTIVE, contribution_key
from services.reporting.domain.coverage import CoveragePolicy, Target, TargetsFileError, parse_targets
from services.reporting.domain.figures import Figures, suppress
from services.reporting.domain.read_model import ReadModel
from services.reporting.http import to_csv
from services.reporting.store import (
    decode_counter,
    decode_leaf,
    encode_counter,
    encode_leaf,
    pack_leaves,
    unpack_leaves,
)
from shared.events import RegionAggregate
from shared.regions import load_regions

REGIONS = load_regions()
NOW = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)


def policy(**targets: Target) -> CoveragePolicy:
    return CoveragePolicy(
        REGIONS,
        working_age_share=0.69,
        labour_force_participation=0.68,
        targets={t.region_code: t for t in targets.values()},
    )


def model_with(active: dict[str, int]) -> ReadModel:
    model = ReadModel()
    model.add({code: {ACTIVE: n, "segment/BPU": n} for code, n in active.items()})
    return model


def test_the_estimated_denominator_is_population_times_the_documented_factors() -> None:
    population = REGIONS.population("32.71")
    assert population is not None
    coverage = policy().coverage("32.71", 1000)
    assert coverage is not None
    assert coverage.denominator == round(population.total * 0.69 * 0.68)
    assert coverage.denominator_source == "estimate"
    assert coverage.ratio == round(1000 / coverage.denominator, 6)
    assert coverage.target_ratio is None
    assert coverage.distance_to_target is None
    assert policy().coverage("32.71.01", 10) is None  # no kecamatan population in population.csv


def test_official_figures_replace_the_estimate_and_give_a_distance_to_target() -> None:
    official = policy(
        a=Target("32.71", workforce=500_000, target_ratio=0.7),
        b=Target("32.71.01", workforce=10, target_ratio=0.7),
    )
    coverage = official.coverage("32.71", 300_000)
    assert coverage is not None
    assert (coverage.denominator, coverage.denominator_source, coverage.ratio) == (500_000, "official", 0.6)
    assert coverage.distance_to_target == 50_000
    kecamatan = official.coverage("32.71.01", 3)
    assert kecamatan is not None
    assert kecamatan.distance_to_target == 4  # ceil(0.7 x 10) - 3, without floating-point surprises
    assert official.coverage("32.71", 400_000).distance_to_target == 0  # type: ignore[union-attr]


def test_regencies_and_cities_are_ranked_by_coverage_nationally_and_within_their_province() -> None:
    model = model_with({"32.71": 100_000, "32.73": 100_000, "33.74": 50_000})
    figures = Figures(model, policy(), NOW)
    national = figures.ranking("national")
    assert len(national) == len(REGIONS.at_level("regency/city"))
    ratios = [r.coverage.ratio for r in national]
    assert ratios == sorted(ratios, reverse=True)
    assert national[0].region_code == "32.71"  # Kota Bogor: same active as Bandung, smaller population
    assert [r.rank_national for r in national] == list(range(1, len(national) + 1))
    jabar = figures.ranking("32")
    assert [r.region_code for r in jabar[:2]] == ["32.71", "32.73"]
    assert [r.rank_in_province for r in jabar] == list(range(1, len(jabar) + 1))
    assert all(r.kota for r in figures.ranking("national", "kota"))
    snapshot = figures.region("32.73")
    assert (snapshot.rank_national, snapshot.rank_in_province) == (2, 2)


def test_small_cells_are_shown_as_below_k_and_money_behind_few_people_is_hidden() -> None:
    assert [suppress(n, 5) for n in (0, 1, 4, 5, 9)] == [0, "<5", "<5", 5, 9]
    model = ReadModel()
    model.add(
        {
            "32.71.01": {
                ACTIVE: 3,
                "funding/APBD": 3,
                contribution_key("APBD", "FUNDER"): 50_400,
                contribution_key("APBD", "FUNDER", contributors=True): 3,
            },
            "32.71.02": {ACTIVE: 7, "funding/SELF": 7},
        }
    )
    small = Figures(model, policy(), NOW, suppress_below=5).region("32.71.01")
    assert small.active == "<5"
    assert small.suppressed_below == 5
    assert small.by_funding_source["APBD"] == "<5"
    assert small.monthly_contributions_by_funding_source["APBD"] == "<5"
    assert small.by_funding_source["SELF"] == 0
    city = Figures(model, policy(), NOW, suppress_below=5).region("32.71")
    assert city.active == 10
    internal = Figures(model, policy(), NOW).region("32.71.01")
    assert internal.active == 3
    assert internal.suppressed_below is None
    assert internal.monthly_contributions_by_funding_source["APBD"] == 50_400
    assert internal.annual_contributions_by_funding_source["APBD"] == 12 * 50_400


def test_the_csv_export_has_one_row_per_region_with_the_api_figures() -> None:
    model = model_with({"32.71.01": 4, "33.74": 2})
    figures = Figures(model, policy(), NOW)
    codes = sorted(model.codes())
    rows = list(csv.DictReader(io.StringIO(to_csv(figures.region(c) for c in codes))))
    assert [r["region_code"] for r in rows] == codes
    by_code = {r["region_code"]: r for r in rows}
    assert by_code["ID"]["active"] == "6"
    assert by_code["32.71"]["segment_BPU"] == "4"
    assert by_code["32.71"]["coverage_ratio"] == str(figures.region("32.71").coverage.ratio)  # type: ignore[union-attr]


def test_an_operator_targets_file_is_checked_line_by_line_in_both_languages() -> None:
    good = "region_code,workforce,target_ratio\n32.71,500000,0.7\n32,,65%\n32.71.01,1200,\n"
    assert parse_targets(good, REGIONS) == [
        Target("32.71", 500_000, 0.7),
        Target("32", None, 0.65),
        Target("32.71.01", 1200, None),
    ]
    bad = "region_code,workforce,target_ratio\n99.99,10,0.5\n32.71,-3,\n32.73,,1.5\n32.01,,\n"
    with pytest.raises(TargetsFileError) as error:
        parse_targets(bad, REGIONS)
    problems = error.value.problems
    assert [p.split(":")[0] for p in problems] == [f"baris {n} / line {n}" for n in (2, 3, 4, 5)]
    assert "tidak dikenal / unknown region code" in problems[0]
    with pytest.raises(TargetsFileError, match="missing columns"):
        parse_targets("code,workforce\n", REGIONS)


@given(st.text())
def test_any_counter_name_survives_the_storage_key_encoding(name: str) -> None:
    encoded = encode_counter(name)
    assert "." not in encoded
    assert not encoded.startswith("$")
    assert decode_counter(encoded) == name


def test_region_codes_are_stored_without_dots() -> None:
    assert encode_leaf("32.71.01") == "32_71_01"
    assert decode_leaf("32_71_01") == "32.71.01"
    assert decode_leaf(encode_leaf("ID")) == "ID"


@given(names=st.lists(st.text(min_size=1, max_size=20), max_size=5), value=st.integers(-(2**40), 2**40))
def test_leaves_are_stored_packed_and_an_older_versions_nested_leaves_are_still_read(
    names: list[str], value: int
) -> None:
    leaves = {"32.71.01": dict.fromkeys(names, value), "ID": {"active": 1}}
    assert unpack_leaves(pack_leaves(leaves)) == leaves
    nested = {encode_leaf(leaf): {encode_counter(n): v for n, v in c.items()} for leaf, c in leaves.items()}
    assert unpack_leaves(nested) == leaves


@given(
    active=st.integers(min_value=0, max_value=50),
    contributors=st.integers(min_value=0, max_value=50),
    k=st.sampled_from([0, 5]),
    reason=st.text(min_size=1, max_size=12),
)
def test_aggregates_built_without_validation_are_valid_contract_events(
    active: int, contributors: int, k: int, reason: str
) -> None:
    """Figures builds aggregates with `model_construct` (speed); they must be what validation would give."""
    model = ReadModel()
    model.add(
        {
            "32.71.01": {
                ACTIVE: active,
                "segment/BPU": active,
                "funding/APBD": active,
                contribution_key("APBD", "FUNDER"): 16_800 * contributors,
                contribution_key("APBD", "FUNDER", contributors=True): contributors,
            },
            "32": {"rejections": 1, f"rejection_reason/{reason}": 1},
        }
    )
    figures = Figures(model, policy(), NOW, suppress_below=k)
    for code in ("32.71.01", "32.71", "32", "ID"):
        built = figures.region(code)
        validated = RegionAggregate.model_validate_json(built.model_dump_json())
        assert validated == built
        assert validated.model_dump_json() == built.model_dump_json()


def test_equal_fingerprints_mean_equal_figures() -> None:
    model = model_with({"32.71.01": 3})
    before = Figures(model, policy(), NOW)
    fingerprint, figures = before.fingerprint("32.71"), before.region("32.71").model_dump(exclude={"as_of"})
    model.add({"32.71.02": {ACTIVE: 1}})
    model.add({"32.71.02": {ACTIVE: 1}}, -1)
    after = Figures(model, policy(), NOW)
    assert after.fingerprint("32.71") == fingerprint
    assert after.region("32.71").model_dump(exclude={"as_of"}) == figures
    model.add({"32.71.02": {ACTIVE: 1}})
    assert Figures(model, policy(), NOW).fingerprint("32.71") != fingerprint


def test_a_region_whose_rank_alone_moved_is_republished_as_if_built_again() -> None:
    model = model_with({"32.71.01": 3, "32.73.01": 1})
    before = Figures(model, policy(), NOW)
    model.add({"32.73.01": {ACTIVE: 50_000}})  # Kota Bandung overtakes Kota Bogor
    after = Figures(model, policy(), NOW + timedelta(seconds=1))
    was, now = before.fingerprint("32.71"), after.fingerprint("32.71")
    assert was.figures == now.figures
    assert was.rank != now.rank
    assert after.reranked(before.region("32.71")) == after.region("32.71")
