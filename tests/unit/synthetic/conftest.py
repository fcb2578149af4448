"""Fixtures for the synthetic request generator: the region reference it draws from."""

from __future__ import annotations

import pytest

from shared.regions import Regions, load_regions


@pytest.fixture(scope="session")
def regions() -> Regions:
    return load_regions()
