"""Sealing bytes with AES-GCM: NIKs at rest, dead-letter payloads, webhook secrets.

A sealer holds a key ring: the current key seals, and every key of the ring opens (the previous keys are there
only while a rotation runs, docs/operations.md "Rotating secrets"). A sealed value names the key that sealed it:

    version 2:  base64(0x02 | key id (8 bytes) | nonce (12 bytes) | ciphertext + tag)
    version 1:  base64(0x01 | nonce (12 bytes) | ciphertext + tag)      sealed before key ids; still opened

The key id is an HMAC of a fixed label under the key itself, so it identifies a key without telling anything
about it, and `open` goes straight to the right key instead of trying each (a wrong key and a tampered value
look the same to AES-GCM). The header is 9 bytes, so the first 12 base64 characters of every value sealed
with one key are the same: whether a value still needs re-sealing is a string prefix, read without decrypting.
A version-1 value is opened by trying the ring's keys, current first; re-sealing turns it into version 2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from collections.abc import Iterable

_V1, _V2 = 1, 2
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_KEY_ID_LABEL = b"lindungi seal key id"


class UnknownSealKeyError(ValueError):
    """A value sealed with a key that is not in the ring (removed too early, or another deployment's)."""


def key_id(key_b64: str) -> str:
    """The hex id of a key as sealed values carry it: safe to print, log and compare."""
    return _key_id(_decode_key(key_b64)).hex()


def _decode_key(key_b64: str) -> bytes:
    try:
        key = base64.b64decode(key_b64.strip())
    except ValueError:  # binascii.Error: bad padding
        key = b""
    if len(key) != 32:
        raise ValueError("a seal key must be 32 bytes, base64-encoded")
    return key


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:_KEY_ID_BYTES]


class Sealer:
    """AES-256-GCM over a key ring: `key_b64` seals and opens, each of `previous` only opens."""

    def __init__(self, key_b64: str, previous: Iterable[str] = ()) -> None:
        current = _decode_key(key_b64)
        self._current_id = _key_id(current)
        self._ring: dict[bytes, AESGCM] = {self._current_id: AESGCM(current)}
        for other in previous:
            key = _decode_key(other)
            self._ring.setdefault(_key_id(key), AESGCM(key))  # a key listed twice (or current too) counts once
        header = bytes([_V2]) + self._current_id
        self._current_prefix = base64.b64encode(header).decode("ascii")

    @property
    def key_id(self) -> str:
        """The current key's id (hex)."""
        return self._current_id.hex()

    @property
    def key_ids(self) -> list[str]:
        """Every key's id, the current one first."""
        return [kid.hex() for kid in self._ring]

    def seal(self, plaintext: bytes, associated_data: bytes | None = None) -> str:
        """Seal with the current key. `associated_data` binds the value to its place (a participant id): the
        same bytes must be given to open it."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ring[self._current_id].encrypt(nonce, plaintext, associated_data)
        return base64.b64encode(bytes([_V2]) + self._current_id + nonce + sealed).decode("ascii")

    def open(self, token: str, associated_data: bytes | None = None) -> bytes:
        """The plaintext; `InvalidTag` when the value was altered or bound to other associated data,
        `UnknownSealKeyError` when its key is not in the ring."""
        raw = base64.b64decode(token)
        version = raw[:1]
        if version == bytes([_V2]):
            kid = raw[1 : 1 + _KEY_ID_BYTES]
            aead = self._ring.get(kid)
            if aead is None:
                raise UnknownSealKeyError(f"sealed with key {kid.hex()}, which is not configured")
            body = raw[1 + _KEY_ID_BYTES :]
            return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], associated_data)
        if version == bytes([_V1]):
            nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
            for aead in self._ring.values():
                try:
                    return aead.decrypt(nonce, sealed, associated_data)
                except InvalidTag:
                    continue
            raise InvalidTag
        raise ValueError("unknown sealed-value version")

    def is_current(self, token: str) -> bool:
        """Whether the value is sealed with the current key in the current format (no decryption)."""
        return token.startswith(self._current_prefix)

    def resealed(self, token: str, associated_data: bytes | None = None) -> str:
        """The value sealed with the current key: itself when it is already, otherwise opened and sealed
        again (with a new nonce). Raises as `open` does when it cannot be opened."""
        if self.is_current(token):
            return token
        return self.seal(self.open(token, associated_data), associated_data)


def parse_keys(text: str | None) -> list[str]:
    """Comma- (or whitespace-) separated base64 keys, as `LINDUNGI_SEAL_KEYS_PREVIOUS` holds them."""
    return [] if not text else [part for part in text.replace(",", " ").split() if part]


def new_key() -> str:
    """A fresh key for `.env` files: `python -c 'from shared.crypto import new_key; print(new_key())'`."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")
