from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from shared.regions import NATIONAL_CODE, load_regions
from shared.settings import ServiceSettings


def test_reference_data_is_complete() -> None:
    regions = load_regions()
    assert len(regions.at_level("province")) == 38
    cities = regions.at_level("regency/city")
    assert len(cities) == 514
    assert sum(r.is_kota for r in cities) == 98
    assert len(regions.at_level("kecamatan")) == 7285
    assert [r.code for r in regions.ancestors("32.71.01")] == ["32.71.01", "32.71", "32", NATIONAL_CODE]
    assert {r.code for r in regions.children("32")} >= {"32.71", "32.01"}


def test_population_adds_up_to_the_nation() -> None:
    regions = load_regions()
    national = regions.population(NATIONAL_CODE)
    assert national is not None
    provinces = sum(p.total for r in regions.at_level("province") if (p := regions.population(r.code)))
    assert provinces == national.total


class _Example(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore", frozen=True)

    mongodb_database: str = "example"
    http_port: int = 8000
    group_id: str = "example"


def test_settings_have_no_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINDUNGI_NIK_HASH_SECRET", raising=False)
    monkeypatch.delenv("LINDUNGI_SEAL_KEY", raising=False)
    with pytest.raises(ValidationError):
        _Example()


def test_service_prefix_wins_over_the_common_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINDUNGI_KAFKA_BOOTSTRAP_SERVERS", "common:9092")
    monkeypatch.setenv("EXAMPLE_KAFKA_BOOTSTRAP_SERVERS", "own:9092")
    monkeypatch.setenv("LINDUNGI_MONGODB_URL", "mongodb://common/")
    settings = _Example()
    assert settings.kafka_bootstrap_servers == "own:9092"
    assert settings.mongodb_url == "mongodb://common/"
