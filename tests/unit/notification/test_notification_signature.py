"""Webhook signatures: what a receiver verifies (docs/notification.md shows the same steps)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from services.notification import signature

SECRET = "a-partner-secret-of-some-length"  # noqa: S105 - a test secret
BODY = b'{"request_id":"req-1","reasons":[]}'


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert signature.sign(SECRET, 1767225600, BODY) == f"v1={expected}"


def test_signed_headers_verify_on_the_receivers_side() -> None:
    headers = signature.signed_headers(SECRET, BODY, "key-1", now=1767225600)
    assert headers["Idempotency-Key"] == "key-1"
    assert signature.verify(
        SECRET, headers["X-Lindungi-Timestamp"], headers["X-Lindungi-Signature"], BODY, now=1767225660
    )


def test_a_changed_body_a_wrong_secret_or_an_old_timestamp_does_not_verify() -> None:
    headers = signature.signed_headers(SECRET, BODY, "key-1", now=1767225600)
    ts, sig = headers["X-Lindungi-Timestamp"], headers["X-Lindungi-Signature"]
    assert not signature.verify(SECRET, ts, sig, BODY + b" ", now=1767225600)
    assert not signature.verify("another-secret-entirely", ts, sig, BODY, now=1767225600)
    assert not signature.verify(SECRET, ts, sig, BODY, now=1767225600 + 301)  # a replay, five minutes on
    assert not signature.verify(SECRET, "yesterday", sig, BODY, now=1767225600)


@given(st.binary(), st.text(min_size=16), st.integers(min_value=0, max_value=2**40))
def test_any_body_signed_now_verifies(body: bytes, secret: str, now: int) -> None:
    headers = signature.signed_headers(secret, body, "k", now=now)
    assert signature.verify(secret, headers["X-Lindungi-Timestamp"], headers["X-Lindungi-Signature"], body, now=now)
