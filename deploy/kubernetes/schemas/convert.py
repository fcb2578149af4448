"""Turn upstream schemas into the files kubeconform reads offline, and record where each came from.

    python3 deploy/kubernetes/schemas/convert.py kubernetes SRC_DIR KIND_FILE...   (kubernetes-validate's -local-strict)
    python3 deploy/kubernetes/schemas/convert.py crd ORIGIN CRD_YAML...
    python3 deploy/kubernetes/schemas/convert.py keda-kafka SCALERS_SCHEMA_JSON ORIGIN

`refresh` (beside this file) downloads the sources from the package registries and runs these commands; the
output is committed, so neither the tests nor CI download anything. Each written file is recorded with its
SHA-256 and origin in sources.json, which tests/unit/deploy/test_kubernetes_schemas.py checks.

Kubernetes' own kinds: kubernetes-validate ships one file per kind whose `$ref`s point into a shared
`_definitions.json`. kubeconform wants one standalone file per kind, named `<kind>[-<group>]-<version>.json`
under `v<k8s version>-standalone-strict/`: each file here embeds the definitions it reaches under `$defs`.

CRDs: each served version's `openAPIV3Schema` becomes `<group>/<kind>_<version>.json` (kubeconform's CRD
naming), made strict the way `kubectl --validate` is: an object that lists its properties accepts no others
unless it says so (`additionalProperties` or `x-kubernetes-preserve-unknown-fields`). OpenAPI's `nullable`
and `x-kubernetes-int-or-string` are spelled in JSON Schema.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
KUBERNETES_DIR = "kubernetes"
CRD_DIR = "crds"
KEDA_DIR = "keda"
MANIFEST = HERE / "sources.json"
SHARED_DEFINITIONS = re.compile(r"^/api/_definitions\.json#/\$defs/(?P<name>.+)$")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def write_json(path: Path, document: Any, origin: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    record(path, origin)


def record(path: Path, origin: str) -> None:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest[path.relative_to(HERE).as_posix()] = {"sha256": digest, "origin": origin}
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


# --- Kubernetes' own kinds -------------------------------------------------------------------------------


def standalone(kind_schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The kind's schema with every definition it reaches copied in, and its `$ref`s made local."""
    needed: dict[str, Any] = {}

    def localise(node: Any) -> Any:
        if isinstance(node, list):
            return [localise(item) for item in node]
        if not isinstance(node, dict):
            return node
        copy = {key: localise(value) for key, value in node.items()}
        ref = copy.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/$defs/")
            match = SHARED_DEFINITIONS.match(ref)
            name = match["name"] if match else name
            copy["$ref"] = f"#/$defs/{name}"
            if name not in needed:
                needed[name] = {}  # placeholder first: definitions may refer to themselves
                needed[name] = localise(definitions[name])
        return copy

    document: dict[str, Any] = localise({k: v for k, v in kind_schema.items() if k != "$id"})
    document["$defs"] = dict(sorted(needed.items()))
    return document


def convert_kubernetes(source: Path, kind_files: list[str]) -> None:
    """source: kubernetes-validate's `v<version>-local-strict` directory."""
    version = source.name.removesuffix("-local-strict")
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    origin = f"kubernetes-validate (PyPI) kubernetes-json-schema/{source.name}"
    for name in kind_files:
        document = standalone(json.loads((source / name).read_text()), definitions)
        write_json(HERE / KUBERNETES_DIR / f"{version}-standalone-strict" / name, document, f"{origin}/{name}")


# --- Custom resource definitions -------------------------------------------------------------------------


def strict(node: Any) -> Any:
    """An openAPIV3Schema node as strict JSON Schema (see the module's docstring)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    for key in SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [strict(sub) for sub in out[key]]
    if out.get("x-kubernetes-int-or-string") and not any(key in out for key in SUBSCHEMA_LISTS):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def convert_crd(path: Path, origin: str) -> None:
    for crd in yaml.safe_load_all(path.read_text()):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = strict(version["schema"]["openAPIV3Schema"])
            target = HERE / CRD_DIR / group / f"{kind.lower()}_{version['name']}.json"
            write_json(target, schema, f"{origin}: {path.name}, {kind} {version['name']}")


# --- KEDA's Kafka scaler parameters ----------------------------------------------------------------------


def convert_keda_kafka(path: Path, origin: str) -> None:
    """Only the Kafka scaler's entry of KEDA's generated scalers schema: what tests check triggers against."""
    document = json.loads(path.read_text())
    kafka = next(scaler for scaler in document["scalers"] if scaler["type"] == "kafka")
    kept = {"kedaVersion": document["kedaVersion"], "schemaVersion": document["schemaVersion"], "scaler": kafka}
    write_json(HERE / KEDA_DIR / "kafka-scaler-parameters.json", kept, f"{origin}: schema/generated/{path.name}")


def main(argv: list[str]) -> int:
    match argv:
        case ["kubernetes", source, *kind_files] if kind_files:
            convert_kubernetes(Path(source), kind_files)
        case ["crd", origin, *paths] if paths:
            for path in paths:
                convert_crd(Path(path), origin)
        case ["keda-kafka", path, origin]:
            convert_keda_kafka(Path(path), origin)
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
