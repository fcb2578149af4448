# ruff: noqa: INP001 - a standalone example to copy, not part of a package
"""Verify a Lindungi webhook delivery (Python 3.9+, standard library only).

As a library: `verify(secret, request_headers, raw_body)`. As a command, to try it:

    LINDUNGI_WEBHOOK_SECRET=... python verify.py TIMESTAMP SIGNATURE < body
    (exit 0: genuine and fresh, accept it; exit 1: refuse it)

The secret is read from the environment, not the command line, where other users of the machine could see it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_SECONDS = 300  # a delivery signed longer ago (a replay) or further ahead than this is refused


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """True when `body` (the raw bytes, before any JSON parsing) was signed with `secret` within the window."""
    by_name = {name.lower(): value for name, value in headers.items()}  # header names are case-insensitive
    timestamp = by_name.get("x-lindungi-timestamp", "").strip()
    signature = by_name.get("x-lindungi-signature", "").strip()
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("v1=" + mac.hexdigest(), signature)


if __name__ == "__main__":
    import os
    import sys

    received = {"X-Lindungi-Timestamp": sys.argv[1], "X-Lindungi-Signature": sys.argv[2]}
    genuine = verify(os.environ["LINDUNGI_WEBHOOK_SECRET"], received, sys.stdin.buffer.read())
    print("verified" if genuine else "refused")  # noqa: T201 - a command's answer
    sys.exit(0 if genuine else 1)
