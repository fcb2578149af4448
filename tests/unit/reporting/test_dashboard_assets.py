"""The dashboard's files: the vendored charting library is what the npm lockfile pins (byte for byte where
`make install` has run `npm ci`), nothing of node_modules is committed, and the province boundaries join to
every Kemendagri province code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.reporting.dashboard.assets import GEOMETRY, GEOMETRY_CODES_BY_NAME, STATIC, VENDORED
from shared.regions import load_regions

PACKAGE = STATIC.parent
ROOT = PACKAGE.parent.parent.parent
LOCK = json.loads((PACKAGE / "package-lock.json").read_text(encoding="utf-8"))
MANIFEST = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
NODE_MODULES = PACKAGE / "node_modules"


def locked(package: str) -> str:
    return str(LOCK["packages"][f"node_modules/{package}"]["version"])


def test_the_manifest_pins_exact_versions_and_the_lockfile_resolves_them() -> None:
    for package, wanted in MANIFEST["dependencies"].items():
        assert wanted[0].isdigit(), f"{package}: pin an exact version, not {wanted}"
        assert locked(package) == wanted
    assert set(LOCK["packages"][""]["dependencies"]) == set(MANIFEST["dependencies"])


@pytest.mark.parametrize("vendored", sorted(VENDORED))
def test_each_vendored_file_names_the_version_the_lockfile_pins(vendored: str) -> None:
    package, _ = VENDORED[vendored]
    header = (STATIC / vendored).read_text(encoding="utf-8")[:200]
    assert f"v{locked(package)} " in header, header


@pytest.mark.parametrize("vendored", sorted(VENDORED))
def test_each_vendored_file_is_byte_for_byte_the_packages_file(vendored: str) -> None:
    package, inside = VENDORED[vendored]
    installed = NODE_MODULES / package / inside
    if not installed.exists():
        pytest.skip("node_modules not installed: `make install` runs npm ci from the lockfile")
    assert json.loads((NODE_MODULES / package / "package.json").read_text())["version"] == locked(package)
    assert (STATIC / vendored).read_bytes() == installed.read_bytes(), "run `make dashboard-vendor`"


def test_node_modules_are_never_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "node_modules/" in ignored


def test_the_boundaries_join_to_every_province_code_and_to_nothing_else() -> None:
    topology = json.loads((STATIC / GEOMETRY).read_text(encoding="utf-8"))
    (layer,) = topology["objects"].values()
    codes = [
        GEOMETRY_CODES_BY_NAME.get(shape["properties"]["PROVINSI"], shape["properties"]["KODE_PROV"])
        for shape in layer["geometries"]
    ]
    provinces = {region.code for region in load_regions().at_level("province")}
    assert len(codes) == len(set(codes)) == 38
    assert set(codes) == provinces


def test_the_boundaries_carry_their_source_and_licence_beside_them() -> None:
    readme = (STATIC / "geo" / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme
    assert "denyherianto" in readme
    assert (STATIC / "geo" / "LICENSE.data.md").exists()
    assert Path(STATIC / "vendor" / "LICENSE.plot").exists()
