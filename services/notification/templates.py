"""Rendering a message into what a channel sends: text from the Jinja2 templates, JSON for webhooks.

Templates live in `services/notification/templates/`, one file per kind and language:
`<template>.<lang>.subject.j2` (one line) and `<template>.<lang>.txt.j2` (the body). Labels shared by several
templates (payers, segments, reasons) are macros in `_labels.<lang>.j2`. Whatever a template produces goes
through the NIK scrubber once more before it is stored or sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notification.domain.messages import Audience, Message
from shared.events import DeliveryChannel
from shared.privacy import scrub

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

_MONTHS = {
    "id": [
        "Januari", "Februari", "Maret", "April", "Mei", "Juni",
        "Juli", "Agustus", "September", "Oktober", "November", "Desember",
    ],
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
}  # fmt: skip


def rupiah(amount: int, language: str = "id") -> str:
    """`16800` -> `Rp16.800` (Indonesian groups thousands with dots) or `Rp16,800` in English."""
    grouped = f"{amount:,}"
    return "Rp" + (grouped.replace(",", ".") if language == "id" else grouped)


def long_date(value: str | date | datetime, language: str = "id") -> str:
    """`2026-01-05` -> `5 Januari 2026` / `5 January 2026`."""
    day = value if isinstance(value, date) else datetime.fromisoformat(value)
    if isinstance(day, datetime):
        day = day.date()
    return f"{day.day} {_MONTHS[language][day.month - 1]} {day.year}"


def percent(value: float | None, language: str = "id") -> str:
    if value is None:
        return "-"
    text = f"{value:.1f}".removesuffix(".0")
    return (text.replace(".", ",") if language == "id" else text) + "%"


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    payload: str | None  # the JSON body of a webhook; None for e-mail and SMS


class Renderer:
    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters.update(rupiah=rupiah, long_date=long_date, percent=percent)

    def text(self, template: str, language: str, facts: dict[str, Any]) -> tuple[str, str]:
        """Subject line and body of one template in one language."""
        context = {**facts, "lang": language}
        subject = self._env.get_template(f"{template}.{language}.subject.j2").render(context)
        body = self._env.get_template(f"{template}.{language}.txt.j2").render(context)
        return scrub(" ".join(subject.split())), scrub(body.strip() + "\n")

    def render(self, message: Message) -> Rendered:
        if message.template is None:
            # A partner's webhook is data for their system, not prose: the payload is the facts.
            facts = {
                "type": message.kind.value,
                "delivery_id": message.delivery_id,
                "source_event_id": message.source_event_id,
                **message.facts,
            }
            return Rendered(subject=message.kind.value, text="", payload=_json(facts))
        subject, text = self.text(message.template, message.language, dict(message.facts))
        payload: str | None = None
        if message.channel is DeliveryChannel.WEBHOOK:
            payload = _json(
                {
                    "type": message.kind.value,
                    "delivery_id": message.delivery_id,
                    "source_event_id": message.source_event_id,
                    "audience": message.audience.value,
                    "recipient_id": message.recipient_id if message.audience is not Audience.WORKER else None,
                    "language": message.language,
                    "subject": subject,
                    "text": text,
                    "data": message.facts,
                }
            )
        return Rendered(subject=subject, text=text, payload=payload)


def _json(payload: dict[str, Any]) -> str:
    return scrub(json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str))
