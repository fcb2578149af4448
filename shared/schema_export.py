"""Export the JSON Schema of every event model to docs/schemas/ (partners code against these files).

python -m shared.schema_export          write the files
python -m shared.schema_export --check  exit 1 if a committed file differs from the models
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.events import ALL_EVENTS, SCHEMA_VERSION, event_type

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def rendered() -> dict[str, str]:
    """File name -> JSON text, for every event of this schema version."""
    files: dict[str, str] = {}
    for model in ALL_EVENTS:
        name = event_type(model).removeprefix("id.lindungi.")
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{name}.v{SCHEMA_VERSION}.json"
        files[f"{name}.v{SCHEMA_VERSION}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files that are missing, different, or no longer produced by any model."""
    expected = rendered()
    present = {p.name for p in directory.glob("*.json")} if directory.exists() else set()
    wrong = [n for n, text in expected.items() if not (directory / n).exists() or (directory / n).read_text() != text]
    return sorted(wrong + sorted(present - expected.keys()))


def write(directory: Path = SCHEMA_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    expected = rendered()
    for leftover in directory.glob("*.json"):
        if leftover.name not in expected:
            leftover.unlink()
    for name, text in expected.items():
        (directory / name).write_text(text)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        if bad:
            print("stale schemas, run `make schemas`:", ", ".join(bad), file=sys.stderr)  # noqa: T201
            return 1
        return 0
    write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
