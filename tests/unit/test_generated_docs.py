"""Documents generated from code stay in step with it: partners and operators read the committed files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_asyncapi_documents_match_the_services() -> None:
    # A clean environment: topic names and servers in the documents are the defaults, not a test's.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "-m", "services.asyncapi", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_committed_topic_table_matches_the_catalogue() -> None:
    from shared.topics import markdown_table  # noqa: PLC0415

    assert markdown_table() in (ROOT / "docs" / "topics.md").read_text()
