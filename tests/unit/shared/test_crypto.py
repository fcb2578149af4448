"""The seal key ring: one key seals, every key opens, and a sealed value names its key (shared/crypto.py)."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from services.registration.settings import RegistrationSettings
from shared.crypto import Sealer, UnknownSealKeyError, key_id, new_key, parse_keys
from shared.settings import SealKeys

NIK = b"3271014506900001"
PID = b"9f3a:BPU"
A, B, C = new_key(), new_key(), new_key()


def sealed_v1(key_b64: str, plaintext: bytes, associated_data: bytes | None) -> str:
    """A value as the project sealed it before key ids: version 1, no key named."""
    nonce = os.urandom(12)
    body = AESGCM(base64.b64decode(key_b64)).encrypt(nonce, plaintext, associated_data)
    return base64.b64encode(b"\x01" + nonce + body).decode()


def test_a_value_names_the_key_that_sealed_it() -> None:
    token = Sealer(A).seal(NIK, PID)
    raw = base64.b64decode(token)
    assert raw[0] == 2
    assert raw[1:9].hex() == key_id(A) == Sealer(A).key_id
    assert len(key_id(A)) == 16
    assert key_id(A) != key_id(B)


def test_during_a_rotation_the_new_key_seals_and_the_old_one_still_opens() -> None:
    before = Sealer(A).seal(NIK, PID)
    rotating = Sealer(B, previous=[A])
    assert rotating.open(before, PID) == NIK
    after = rotating.seal(NIK, PID)
    assert rotating.is_current(after)
    assert not rotating.is_current(before)
    assert Sealer(B).open(after, PID) == NIK  # the old key is not needed for what the new one sealed


def test_the_first_step_of_a_rolling_change_lets_old_instances_open_new_values() -> None:
    # Step 1 of docs/operations.md: every instance learns B while A still seals; step 2 makes B current.
    step_one, step_two = Sealer(A, previous=[B]), Sealer(B, previous=[A])
    assert step_one.open(step_two.seal(NIK, PID), PID) == NIK
    assert step_two.open(step_one.seal(NIK, PID), PID) == NIK


def test_once_the_old_key_is_removed_its_values_are_refused_by_name() -> None:
    before = Sealer(A).seal(NIK, PID)
    with pytest.raises(UnknownSealKeyError, match=key_id(A)):
        Sealer(B).open(before, PID)
    with pytest.raises(UnknownSealKeyError):
        Sealer(A).open(Sealer(B).seal(NIK, PID), PID)


def test_resealing_moves_a_value_to_the_current_key_and_keeps_its_binding() -> None:
    before = Sealer(A).seal(NIK, PID)
    rotating = Sealer(B, previous=[A, C])
    after = rotating.resealed(before, PID)
    assert after != before
    assert rotating.is_current(after)
    assert Sealer(B).open(after, PID) == NIK
    with pytest.raises(InvalidTag):
        Sealer(B).open(after, b"another participant")
    assert rotating.resealed(after, PID) == after  # already current: left as it is, nothing decrypted


def test_values_sealed_before_key_ids_open_with_any_key_of_the_ring_and_are_resealed() -> None:
    legacy = sealed_v1(A, NIK, PID)
    assert Sealer(A).open(legacy, PID) == NIK
    assert Sealer(B, previous=[C, A]).open(legacy, PID) == NIK
    assert not Sealer(A).is_current(legacy)  # a format change too: the walk turns it into version 2
    assert Sealer(A).is_current(Sealer(A).resealed(legacy, PID))
    with pytest.raises(InvalidTag):
        Sealer(B, previous=[C]).open(legacy, PID)


def test_an_altered_value_or_binding_never_opens() -> None:
    sealer = Sealer(B, previous=[A])
    token = sealer.seal(NIK, PID)
    raw = bytearray(base64.b64decode(token))
    raw[-1] ^= 1
    with pytest.raises(InvalidTag):
        sealer.open(base64.b64encode(bytes(raw)).decode(), PID)
    with pytest.raises(InvalidTag):
        sealer.open(token, b"other")
    raw = bytearray(base64.b64decode(token))
    raw[0] = 9
    with pytest.raises(ValueError, match="version"):
        sealer.open(base64.b64encode(bytes(raw)).decode(), PID)


def test_the_ring_lists_the_current_key_first_and_each_key_once() -> None:
    sealer = Sealer(B, previous=[A, B, A])
    assert sealer.key_ids == [key_id(B), key_id(A)]


@pytest.mark.parametrize("bad", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_key_that_is_not_32_bytes_of_base64_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(A, previous=[bad])


def test_previous_keys_are_read_comma_or_space_separated() -> None:
    assert parse_keys(None) == []
    assert parse_keys("") == []
    assert parse_keys(f"{A}, {B}\n{C},") == [A, B, C]


def test_settings_give_every_service_and_command_the_same_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINDUNGI_SEAL_KEY", B)
    monkeypatch.setenv("LINDUNGI_SEAL_KEYS_PREVIOUS", f"{A},{C}")
    monkeypatch.setenv("LINDUNGI_NIK_HASH_SECRET", "s")
    before = Sealer(A).seal(NIK, PID)
    for sealer in (SealKeys().sealer(), RegistrationSettings().sealer()):
        assert sealer.key_ids == [key_id(B), key_id(A), key_id(C)]
        assert sealer.open(before, PID) == NIK
    monkeypatch.delenv("LINDUNGI_SEAL_KEYS_PREVIOUS")
    assert RegistrationSettings().sealer().key_ids == [key_id(B)]


@given(st.binary(max_size=256), st.one_of(st.none(), st.binary(max_size=64)))
def test_any_value_survives_a_rotation(plaintext: bytes, associated_data: bytes | None) -> None:
    before = Sealer(A).seal(plaintext, associated_data)
    after = Sealer(B, previous=[A]).resealed(before, associated_data)
    assert Sealer(B).open(after, associated_data) == plaintext
