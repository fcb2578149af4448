from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stdout

import pytest
import structlog
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import Sealer, new_key
from shared.logging import configure_logging, mask_personal_data
from shared.privacy import mask_nik, nik_hash, scrub

NIK = "3271014506900001"


def test_mask_keeps_region_prefix_and_last_two_digits() -> None:
    assert mask_nik(NIK) == "3271**********01"


@given(st.from_regex(r"\A\d{16}\Z"))
def test_scrub_never_leaves_a_nik_in_text(nik: str) -> None:
    text = f"worker {nik} failed; nik={nik}."
    assert nik not in scrub(text)


def test_scrub_leaves_longer_and_shorter_digit_runs_alone() -> None:
    assert scrub("order 12345678901234567 id 123") == "order 12345678901234567 id 123"


def test_keyed_hash_depends_on_the_secret() -> None:
    assert nik_hash(NIK, b"a") == nik_hash(NIK, b"a")
    assert nik_hash(NIK, b"a") != nik_hash(NIK, b"b")


def test_processor_masks_nested_fields_and_numbers() -> None:
    event = {"event": f"rejected {NIK}", "data": {"worker": {"nik": NIK}, "ids": [NIK]}, "n": int(NIK)}
    masked = mask_personal_data(None, "info", event)
    assert NIK not in json.dumps(masked)


def test_json_log_lines_are_masked_for_structlog_and_stdlib_loggers() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        configure_logging("test", fmt="json")
        structlog.get_logger("t").info("enrolled", nik=NIK, topic="t", partition=1, offset=2)
        logging.getLogger("aiokafka.fake").warning("library saw %s", NIK)
        try:
            int(f"bad {NIK}")  # a library error whose message carries the NIK
        except ValueError:
            structlog.get_logger("t").exception("crashed")
    text = out.getvalue()
    assert NIK not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["nik"] == "3271**********01"
    assert lines[0]["service"] == "test"
    assert {"topic", "partition", "offset"} <= lines[0].keys()
    assert "3271**********01" in lines[2]["exception"]


def test_sealing_round_trips_and_detects_tampering() -> None:
    sealer = Sealer(new_key())
    token = sealer.seal(NIK.encode(), b"ctx")
    assert NIK not in token
    assert sealer.open(token, b"ctx") == NIK.encode()
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(InvalidTag):
        sealer.open(tampered, b"ctx")
    with pytest.raises(InvalidTag):
        sealer.open(token, b"other context")
