"""What every service's decoding relies on: validation errors told without echoing the input, dead letters
sealed, keyed records routed by their key."""

from __future__ import annotations

import base64
import os

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel, ValidationError

from shared.crypto import Sealer
from shared.events import DeadLetterRecorded
from shared.messaging import DeadLetters, Keyed, describe

NIK = "3271046504930002"


class _Request(BaseModel):
    request_id: str
    age: int


def _error(value: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Request.model_validate(value)
    return caught.value


def test_describe_names_fields_and_never_echoes_the_input() -> None:
    text = describe(_error({"request_id": 1, "age": NIK + "x"}))
    assert "request_id" in text
    assert "age" in text
    assert NIK not in text


def test_describe_masks_a_nik_in_a_message_and_keeps_to_its_limit() -> None:
    error = _error({"request_id": "r", "age": "x"})
    assert len(describe(error, limit=10)) <= 10
    # A NIK can reach a message through a field name (a partner's mistake); it is masked there too.
    keyed = _error({NIK: 1})
    assert NIK not in describe(keyed)


def test_a_dead_letter_seals_the_bytes_and_is_keyed_by_where_the_record_was() -> None:
    sealer = Sealer(base64.b64encode(os.urandom(32)).decode())
    letters = DeadLetters("registration", "lindungi.deadletters.v1", sealer)
    value = f'{{"nik": "{NIK}"'.encode()
    record = ConsumerRecord("intake", 3, 41, 0, 0, b"k", value, None, len(b"k"), len(value), [])
    letter = letters.letter(record, "NotJson", f"cannot read {NIK}")
    assert isinstance(letter, DeadLetterRecorded)
    assert letter.id == "deadletter:intake:3:41"
    assert NIK not in letter.model_dump_json()
    assert sealer.open(letter.data.value_sealed) == value
    (keyed,) = letters.records([letter])
    assert keyed == Keyed.of("lindungi.deadletters.v1", "intake:3:41", letter)
