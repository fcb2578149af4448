"""A receiver's verification of a delivery: the reference verifier and the two documented snippets
(docs/examples/webhook-verify/verify.py and verify.mjs, run as a receiver would run them) agree on deliveries
signed by the service's own `sign`: genuine ones pass, tampered, forged, replayed and post-dated ones do not."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.notification.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
    verify,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "docs" / "examples" / "webhook-verify"
SECRET = "whsec-a-partner-secret-of-some-length"  # noqa: S105 - a test secret
OTHER_SECRET = "whsec-someone-else-entirely"  # noqa: S105 - a test secret
BODY = '{"type":"request.rejected","request_id":"req-9","nik_masked":"3271**********01","reason":"Ümlaut ✓"}'.encode()

Verifier = Callable[[str, dict[str, str], bytes], bool]


def reference(secret: str, headers: dict[str, str], body: bytes) -> bool:
    return verify(secret, headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, ""), body)


def snippet(command: list[str]) -> Verifier:
    """A documented snippet run as a command: the secret in its environment, the two headers as arguments,
    the raw body on stdin; exit 0 means verified."""

    def run(secret: str, headers: dict[str, str], body: bytes) -> bool:
        result = subprocess.run(
            [*command, headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")],
            input=body,
            capture_output=True,
            env={**os.environ, "LINDUNGI_WEBHOOK_SECRET": secret},
            check=False,
            timeout=60,
        )
        assert result.returncode in {0, 1}, result.stderr.decode()
        assert result.stdout.strip() == (b"verified" if result.returncode == 0 else b"refused")
        return result.returncode == 0

    return run


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js (`node`) is needed to check the documented JavaScript verifier")
    return found


@pytest.fixture(params=["reference", "python", "node"])
def verifier(request: pytest.FixtureRequest) -> Verifier:
    if request.param == "reference":
        return reference
    if request.param == "python":
        return snippet([sys.executable, str(EXAMPLES / "verify.py")])
    return snippet([node(), str(EXAMPLES / "verify.mjs")])


def delivery(seconds_ago: float = 0, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    """The headers the service sends, signed with its own `sign` at (now - seconds_ago)."""
    return signed_headers(secret, body, "delivery-1", now=time.time() - seconds_ago)


def test_a_delivery_signed_by_the_service_verifies(verifier: Verifier) -> None:
    assert verifier(SECRET, delivery(), BODY)


def test_a_retry_signed_a_little_while_ago_still_verifies(verifier: Verifier) -> None:
    assert verifier(SECRET, delivery(seconds_ago=DEFAULT_TOLERANCE_SECONDS / 2), BODY)


def test_the_snippets_match_header_names_whatever_their_case() -> None:
    """Frameworks hand headers over lower-cased (Node.js always): the functions themselves, called directly."""
    headers = {name.lower(): value for name, value in delivery().items()}
    spec = importlib.util.spec_from_file_location("webhook_verify", EXAMPLES / "verify.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.verify(SECRET, headers, BODY)
    script = (
        f"import {{ verify }} from {json.dumps((EXAMPLES / 'verify.mjs').as_uri())};"
        "const chunks = []; for await (const chunk of process.stdin) chunks.push(chunk);"
        "process.exit(verify(process.argv[1], JSON.parse(process.argv[2]), Buffer.concat(chunks)) ? 0 : 1);"
    )
    result = subprocess.run(
        [node(), "--input-type=module", "-e", script, SECRET, json.dumps(headers)],
        input=BODY,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_a_tampered_body_is_refused(verifier: Verifier) -> None:
    tampered = BODY.replace(b"req-9", b"req-8")
    assert not verifier(SECRET, delivery(), tampered)
    assert not verifier(SECRET, delivery(), BODY + b"\n")


def test_a_delivery_signed_with_another_secret_is_refused(verifier: Verifier) -> None:
    assert not verifier(SECRET, delivery(secret=OTHER_SECRET), BODY)


def test_a_replayed_delivery_older_than_the_window_is_refused(verifier: Verifier) -> None:
    # Twice the window: a genuine signature, captured and sent again ten minutes later.
    assert not verifier(SECRET, delivery(seconds_ago=2 * DEFAULT_TOLERANCE_SECONDS), BODY)


def test_a_timestamp_too_far_ahead_is_refused(verifier: Verifier) -> None:
    assert not verifier(SECRET, delivery(seconds_ago=-2 * DEFAULT_TOLERANCE_SECONDS), BODY)


@pytest.mark.parametrize("timestamp", ["", "yesterday", "-1", "1e9", " "])
def test_a_malformed_timestamp_is_refused(verifier: Verifier, timestamp: str) -> None:
    headers = {**delivery(), TIMESTAMP_HEADER: timestamp}
    assert not verifier(SECRET, headers, BODY)


def test_a_missing_or_altered_signature_is_refused(verifier: Verifier) -> None:
    headers = delivery()
    assert not verifier(SECRET, {**headers, SIGNATURE_HEADER: ""}, BODY)
    signature = headers[SIGNATURE_HEADER]
    flipped = signature[:-1] + ("1" if signature.endswith("0") else "0")
    assert not verifier(SECRET, {**headers, SIGNATURE_HEADER: flipped}, BODY)
    assert not verifier(SECRET, {**headers, SIGNATURE_HEADER: headers[SIGNATURE_HEADER].replace("v1=", "v0=")}, BODY)


def test_the_documented_snippets_are_the_tested_files() -> None:
    """docs/notification.md shows each example's `verify` function exactly as the file holds it."""
    document = (ROOT / "docs" / "notification.md").read_text(encoding="utf-8")
    section = document.split("### Verifying a delivery", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(python|js)\n(.*?)```", section, flags=re.DOTALL)
    assert [language for language, _ in blocks] == ["python", "js"]
    for (_, shown), name in zip(blocks, ["verify.py", "verify.mjs"], strict=True):
        assert shown.strip() in (EXAMPLES / name).read_text(encoding="utf-8"), name
