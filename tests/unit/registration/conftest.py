"""Fixtures for registration's pure domain: the region reference, a fixed `today`, and request builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from services.registration.domain.nik import format_nik
from shared.events import (
    Category,
    Employer,
    EmployerSize,
    EnrollmentRequest,
    FundingSource,
    Program,
    RiskLevel,
    Segment,
    Sex,
    Worker,
)
from shared.regions import Regions, load_regions

TODAY = date(2025, 11, 24)
COVERAGE_START = date(2025, 12, 1)
KOTA_BOGOR = "32.71"
BOGOR_SELATAN = "32.71.01"  # a kecamatan of Kota Bogor
BIRTH = date(1990, 6, 5)


@pytest.fixture(scope="session")
def regions() -> Regions:
    return load_regions()


@pytest.fixture(scope="session")
def today() -> date:
    return TODAY


def worker(**changes: Any) -> Worker:
    """Siti, born 5 June 1990 in Bogor Selatan: her NIK agrees with everything she states."""
    birth = changes.pop("birth_date", BIRTH)
    sex = changes.pop("sex", Sex.FEMALE)
    nik = changes.pop("nik", format_nik(BOGOR_SELATAN, birth, sex, 1))
    fields: dict[str, Any] = {
        "nik": nik,
        "full_name": "Siti Aminah",
        "birth_date": birth,
        "sex": sex,
        "domicile_kecamatan": BOGOR_SELATAN,
    }
    return Worker(**(fields | changes))


def bpu_request(**changes: Any) -> EnrollmentRequest:
    """A vulnerable worker on the standard package, funded by the city's APBD: valid on TODAY."""
    fields: dict[str, Any] = {
        "request_id": "req-bpu-1",
        "worker": worker(),
        "region_code": KOTA_BOGOR,
        "segment": Segment.BPU,
        "category": Category.VULNERABLE,
        "programs": [Program.JKK, Program.JKM],
        "declared_income": 1_000_000,
        "funding_source": FundingSource.APBD,
        "coverage_start": COVERAGE_START,
    }
    return EnrollmentRequest(**(fields | changes))


def pu_request(size: EmployerSize = EmployerSize.LARGE, **changes: Any) -> EnrollmentRequest:
    """A formal employee of a large employer with every program: valid on TODAY."""
    fields: dict[str, Any] = {
        "request_id": "req-pu-1",
        "worker": worker(),
        "region_code": KOTA_BOGOR,
        "segment": Segment.PU,
        "category": Category.FORMAL_EMPLOYEE,
        "employer": Employer(registration_number="12345678", size=size, jkk_risk=RiskLevel.LOW),
        "programs": [Program.JKK, Program.JKM, Program.JHT, Program.JP, Program.JKP],
        "monthly_wage": 6_000_000,
        "funding_source": FundingSource.EMPLOYER,
        "coverage_start": COVERAGE_START,
    }
    return EnrollmentRequest(**(fields | changes))


def jakon_request(**changes: Any) -> EnrollmentRequest:
    fields: dict[str, Any] = {
        "request_id": "req-jakon-1",
        "worker": worker(sex=Sex.MALE, full_name="Budi Santoso"),
        "region_code": KOTA_BOGOR,
        "segment": Segment.JAKON,
        "category": Category.CONSTRUCTION,
        "employer": Employer(registration_number="87654321", size=EmployerSize.MEDIUM, jkk_risk=RiskLevel.HIGH),
        "programs": [Program.JKK, Program.JKM],
        "contract_value": 2_000_000_000,
        "contract_months": 10,
        "funding_source": FundingSource.EMPLOYER,
        "coverage_start": COVERAGE_START,
    }
    return EnrollmentRequest(**(fields | changes))


def pmi_request(**changes: Any) -> EnrollmentRequest:
    fields: dict[str, Any] = {
        "request_id": "req-pmi-1",
        "worker": worker(),
        "region_code": KOTA_BOGOR,
        "segment": Segment.PMI,
        "category": Category.MIGRANT,
        "programs": [Program.JKK, Program.JKM],
        "contract_months": 24,
        "funding_source": FundingSource.SELF,
        "coverage_start": COVERAGE_START,
    }
    return EnrollmentRequest(**(fields | changes))


Builder = Callable[..., EnrollmentRequest]


def aged(years: int, on: date = COVERAGE_START) -> date:
    """A birth date that makes the worker exactly `years` old (completed) on `on`, a day past the birthday."""
    return on.replace(year=on.year - years) - timedelta(days=1)


# Builders are handed out as fixtures (not imported from here) so the tests work in any pytest import mode.
# Session scope: they are plain functions, and hypothesis tests may use them.


@pytest.fixture(scope="session")
def make_worker() -> Callable[..., Worker]:
    return worker


@pytest.fixture(scope="session")
def bpu() -> Builder:
    return bpu_request


@pytest.fixture(scope="session")
def pu() -> Builder:
    return pu_request


@pytest.fixture(scope="session")
def jakon() -> Builder:
    return jakon_request


@pytest.fixture(scope="session")
def pmi() -> Builder:
    return pmi_request


@pytest.fixture(scope="session")
def birth_for_age() -> Callable[..., date]:
    return aged


@dataclass(frozen=True)
class Builders:
    """Everything a table of cases needs to build its requests."""

    worker: Callable[..., Worker]
    bpu: Builder
    pu: Builder
    jakon: Builder
    pmi: Builder
    aged: Callable[..., date]


@pytest.fixture(scope="session")
def build() -> Builders:
    return Builders(worker, bpu_request, pu_request, jakon_request, pmi_request, aged)
