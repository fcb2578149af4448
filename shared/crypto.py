"""Sealing bytes with AES-GCM: NIKs at rest and dead-letter payloads.

A sealed value is `base64(version byte | 12-byte nonce | ciphertext+tag)`; the version byte leaves room for
key rotation. The key comes from settings (32 bytes, base64), never from code.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


class Sealer:
    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("the seal key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated_data: bytes | None = None) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, associated_data)
        return base64.b64encode(_VERSION + nonce + sealed).decode("ascii")

    def open(self, token: str, associated_data: bytes | None = None) -> bytes:
        raw = base64.b64decode(token)
        if raw[:1] != _VERSION:
            raise ValueError("unknown sealed-value version")
        nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        return self._aead.decrypt(nonce, sealed, associated_data)


def new_key() -> str:
    """A fresh key for `.env` files: `python -c 'from shared.crypto import new_key; print(new_key())'`."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")
