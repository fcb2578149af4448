"""Registration's intake under test, shared by tests/e2e/test_bad_input.py and the fuzzer: a registration
process of its own (unique topics, consumer group and database), and what the contract promises for a record.

`fate` is the contract of docs/partners.md read from the record alone: an answer to `partner:request_id` when
the envelope names both, a dead letter (with its error type) when it does not or cannot be read. It follows the
same steps as registration's intake (services/registration/handlers.py) with the same parsers, so a record
the two read differently is a finding, not noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from services.registration.domain.decisions import partner_id_of
from services.registration.handlers import unpaired_surrogate
from shared.events import partner_request_adapter
from shared.topics import CHANNEL_HEADER
from tests.support import ServiceProcess, registration_env

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

#: Registration's record limit in these runs: larger records are dead-lettered (`MessageTooLarge`).
MAX_MESSAGE_BYTES = 65_536

Fate = tuple[Literal["answer"], str] | tuple[Literal["dead"], str]
Headers = tuple[tuple[str, bytes], ...]


@dataclass
class Registration:
    """A registration process on topics, a consumer group and a database named after `unique`."""

    service: ServiceProcess
    bootstrap: str
    unique: str

    @property
    def requests(self) -> str:
        return f"requests.{self.unique}"

    @property
    def outcomes(self) -> str:
        return f"outcomes.{self.unique}"

    @property
    def dead_letters(self) -> str:
        return f"deadletters.{self.unique}"

    @property
    def group(self) -> str:
        return f"registration-{self.unique}"

    @property
    def database(self) -> str:
        return f"registration_{self.unique}"


def start_registration(  # noqa: PLR0913 - the facts of one process
    workdir: Path,
    service_env: dict[str, str],
    kafka_bootstrap: str,
    unique: str,
    partners: Sequence[dict[str, Any]],
    *,
    extra_env: dict[str, str] | None = None,
) -> Registration:
    """Start registration (not waiting for it: `service.wait_ready`), seeded with `partners`."""
    seed = workdir / "partners.json"
    seed.write_text(json.dumps(list(partners)))
    env = {
        **registration_env(service_env, unique, seed),
        "REGISTRATION_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
        "REGISTRATION_BATCH_MAX_RECORDS": "100",
        **(extra_env or {}),
    }
    running = Registration(ServiceProcess("registration", env, workdir / "registration.log"), kafka_bootstrap, unique)
    running.service.start()
    return running


def channel_of(headers: Headers) -> str | None:
    """The partner a `lindungi-partner` header names, as registration reads it (the first such header; bytes
    that are not UTF-8 replaced, as the consumer's tolerant parser does)."""
    for key, value in headers:
        if key == CHANNEL_HEADER:
            return value.decode("utf-8", "replace")
    return None


def fate(value: bytes | None, headers: Headers = ()) -> Fate:
    """What the contract promises for a record (module docstring)."""
    data = value or b""
    if len(data) > MAX_MESSAGE_BYTES:
        return ("dead", "MessageTooLarge")
    if unpaired_surrogate(data):  # valid JSON, but no text to answer with
        return ("dead", "SchemaInvalid")
    channel = channel_of(headers)
    try:
        event = partner_request_adapter.validate_json(data)
    except ValidationError:
        pass
    else:
        claimed = partner_id_of(event.source)
        # A payload claiming another partner than its channel is answered to the channel's partner.
        partner = claimed if channel is None or claimed == channel else channel
        return ("answer", f"{partner}:{event.data.request_id}")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return ("dead", "NotJson")
    body = raw.get("data") if isinstance(raw, dict) else None
    source, request_id = (raw.get("source"), body.get("request_id")) if isinstance(body, dict) else (None, None)
    if isinstance(source, str) and source and isinstance(request_id, str) and request_id:
        return ("answer", f"{channel or partner_id_of(source)[:128]}:{request_id[:128]}")
    return ("dead", "SchemaInvalid")
