"""Dead letters: records no handler could turn into an event, sealed for an operator to inspect and replay."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.events.envelope import CloudEvent, Frozen


class DeadLetter(Frozen):
    """A record no handler could turn into an event, kept so an operator can inspect and replay it.

    The original key and value are sealed (AES-GCM, `shared.crypto`) because a dead letter from the intake
    topic may hold a NIK, and no topic but intake may carry one in clear. The error text is NIK-masked.
    """

    service: str
    source_topic: str
    partition: int
    offset: int
    key_sealed: str | None = Field(description="sealed original key, base64")
    value_sealed: str = Field(description="sealed original value, base64")
    value_size: int = Field(ge=0, description="size of the original value in bytes")
    headers: dict[str, str] = Field(default_factory=dict)
    error_type: str
    error: str = Field(max_length=2000)


class DeadLetterRecorded(CloudEvent[DeadLetter]):
    type: Literal["id.lindungi.deadletter.recorded"] = "id.lindungi.deadletter.recorded"
