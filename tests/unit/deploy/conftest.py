"""Fixtures over the deployment files (helpers in deploy_files.py)."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_files import BASE, PROD, SAMPLE_SECRETS, drop_extensions, interpolate, load, merge


@pytest.fixture(scope="session")
def base() -> dict[str, Any]:
    return load(BASE)


@pytest.fixture(scope="session")
def prod_overlay() -> dict[str, Any]:
    return load(PROD)


@pytest.fixture(scope="session")
def merged(base: dict[str, Any], prod_overlay: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml + docker-compose.prod.yml, before interpolation."""
    return merge(drop_extensions(base), drop_extensions(prod_overlay))


@pytest.fixture(scope="session")
def sample_env() -> dict[str, str]:
    return dict(SAMPLE_SECRETS)


@pytest.fixture(scope="session", params=["dev", "prod"])
def profile(
    request: pytest.FixtureRequest, base: dict[str, Any], merged: dict[str, Any], sample_env: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """Each profile's whole model, interpolated with an operator's complete .env."""
    raw = drop_extensions(base) if request.param == "dev" else merged
    return request.param, interpolate(raw, sample_env)
