"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes.

Every webhook and SMS-gateway request carries

    X-Lindungi-Timestamp: 1767225600                  (Unix seconds when this attempt was signed)
    X-Lindungi-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    Idempotency-Key: <delivery id>                     (the same on every retry of one notification)

A receiver recomputes the HMAC with its own secret over the raw body it received, compares in constant time,
and rejects a timestamp too far from its clock (a replayed old request). `verify` below is the reference;
receivers copy docs/examples/webhook-verify/ (Python, Node.js), shown in docs/notification.md and tested
against this module's `sign` (tests/unit/notification/test_webhook_verifiers.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Lindungi-Timestamp"
SIGNATURE_HEADER = "X-Lindungi-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Lindungi-Signature` value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, idempotency_key: str, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }


def verify(  # noqa: PLR0913 - a receiver passes what it received, one argument each
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when the signature matches this body and the timestamp is fresh."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature.strip())
