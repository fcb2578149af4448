"""Partners' own topics: each request forwarded to the intake topic with the partner its topic proves.

On a secured broker only partner `A` may write `lindungi.partner.A.requests.v1` (deploy/compose/prod/acls.toml),
so the topic a request arrived on is the partner's authenticated identity; the `source` inside the payload is
only a claim. Registration reads every partner's topic by pattern and forwards each record, unchanged, to the
shared intake topic with that identity in the `lindungi-partner` header, which no partner can set: only
registration may write the intake topic. The intake handler (`handlers.py`) then rejects a request whose
payload claims another partner.

Why forward rather than decide here: the intake topic is keyed by NIK, so one worker's requests from every
partner reach one partition, and one registration instance decides them in order. Deciding straight from
the partners' topics would let two instances decide the same participant at once. The forwarded record is
re-keyed by the NIK the payload names (a partner cannot route one worker's requests to several partitions
with keys of its own choosing); an unreadable payload keeps its key and is answered or dead-lettered by the
intake handler like any other. Forwarding is at-least-once (commit after the broker acknowledged), which the
request log makes harmless: a request forwarded twice is decided once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.messaging import Keyed, record_headers
from shared.topics import CHANNEL_HEADER, VERDICT_HEADER

if TYPE_CHECKING:
    import re
    from collections.abc import Awaitable, Callable, Iterable

    from aiokafka import ConsumerRecord

    from shared.consumer import Records


def nik_of_payload(value: bytes) -> str | None:
    """The NIK a request's payload names, if it can be read: the key one worker's requests share."""
    try:
        data = json.loads(value).get("data")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    worker = data.get("worker")
    nik = worker.get("nik") if isinstance(worker, dict) else data.get("nik")
    return nik if isinstance(nik, str) and nik else None


@dataclass(frozen=True)
class PartnerChannels:
    """The subscriber's handler for the partners' topics."""

    requests_topic: str
    pattern: re.Pattern[str]
    publish: Callable[[Iterable[Keyed]], Awaitable[None]]

    async def handle(self, records: Records) -> None:
        await self.publish([self.forward(record) for record in records])

    def forward(self, record: ConsumerRecord[bytes, bytes]) -> Keyed:
        match = self.pattern.fullmatch(record.topic)
        if match is None:  # the subscription's pattern and this one are built from the same settings
            raise ValueError(f"{record.topic} is not a partner's request topic")
        value = record.value or b""
        # Only registration sets these: a partner's own values are dropped, never forwarded.
        headers: dict[str, Any] = {
            k: v for k, v in record_headers(record).items() if k not in {CHANNEL_HEADER, VERDICT_HEADER}
        }
        headers[CHANNEL_HEADER] = match["partner"]
        key = nik_of_payload(value) or (record.key or b"").decode("utf-8", "replace") or match["partner"]
        return Keyed(self.requests_topic, key, value, headers)
