"""Masking addresses: workers' contacts are personal data, and a webhook URL may carry a token.

Wherever an address is shown (the operators' API, the ledger's `recipient`, the deliveries topic) or logged
(delivery errors), it is masked here first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from shared.events import DeliveryChannel
from shared.privacy import scrub

if TYPE_CHECKING:
    from collections.abc import Iterable


def mask_email(address: str) -> str:
    """`siti.aminah@example.org` -> `s***@example.org`."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """`+6281234567890` -> `+62*******890`: the country code and the last three digits stay readable."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 5:
        return "*" * len(digits)
    plus = "+" if number.strip().startswith("+") else ""
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"


def mask_url(url: str) -> str:
    """Scheme, host and path only: a query string or user info may hold a token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def display_address(channel: DeliveryChannel, address: str) -> str:
    if channel is DeliveryChannel.EMAIL:
        return mask_email(address)
    if channel is DeliveryChannel.SMS:
        return mask_phone(address)
    return mask_url(address)


def redact(text: str, addresses: Iterable[str | None]) -> str:
    """An error or log text with every known address masked and every NIK-shaped run masked."""
    for address in addresses:
        if address:
            text = text.replace(address, display_address(_channel_of(address), address))
    return scrub(text)


def _channel_of(address: str) -> DeliveryChannel:
    if "://" in address:
        return DeliveryChannel.WEBHOOK
    return DeliveryChannel.EMAIL if "@" in address else DeliveryChannel.SMS
