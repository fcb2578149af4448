"""The CloudEvents 1.0 envelope every Lindungi record wears, and the base of every contract model.

Structured mode: the whole envelope is the JSON body, with the same attributes copied to `ce_*` Kafka headers
(binary-mode routing: a consumer can route or filter without parsing the body). `schemaversion` is a
CloudEvents extension attribute: a consumer accepts the versions it knows and dead-letters the rest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION: Literal["1.0"] = "1.0"
SCHEMA_VERSION: Literal[1] = 1
TYPE_PREFIX = "id.lindungi."


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return str(uuid.uuid4())


class Frozen(BaseModel):
    """Base of every contract model: immutable, strict about unknown fields so a typo is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


DataT = TypeVar("DataT", bound=BaseModel)


class CloudEvent(Frozen, Generic[DataT]):
    """CloudEvents 1.0 envelope (structured mode). Subclasses fix `type` and `data`."""

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=128)
    type: str
    source: str = Field(min_length=1, max_length=256, description="partner id (`partner/<id>`) or service")
    subject: str | None = Field(default=None, max_length=256, description="never a NIK")
    time: datetime = Field(default_factory=utc_now)
    datacontenttype: Literal["application/json"] = "application/json"
    schemaversion: Literal[1] = SCHEMA_VERSION
    data: DataT


def event_type(model: type[CloudEvent[Any]]) -> str:
    default = model.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{model.__name__} has no fixed type")
    return default
