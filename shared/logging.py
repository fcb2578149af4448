"""Structured logging for every service (structlog).

JSON lines when stdout is not a terminal (containers, CI, supervised processes), a readable console
otherwise. Standard-library loggers (aiokafka, FastStream, pymongo) go through the same processors, so
their lines are structured and masked too. The last processor before rendering masks any 16-digit run in
any field: a NIK that slips into a message, an exception or a library's log line is never written in clear.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from shared.privacy import scrub


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_mask(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and 10**15 <= abs(value) < 10**16:
        return scrub(str(value))
    return value


def mask_personal_data(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask every NIK-shaped value in every field, nested ones included."""
    masked: MutableMapping[str, Any] = event_dict
    for key, value in event_dict.items():
        masked[key] = _mask(value)
    return masked


def _render_exception_then_mask() -> list[Processor]:
    # Exceptions are rendered to text first so that a NIK inside a traceback is masked as well.
    return [structlog.processors.format_exc_info, mask_personal_data]


def configure_logging(
    service: str,
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
) -> None:
    """Configure structlog and the standard library once per process."""
    json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_render_exception_then_mask(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "pymongo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
