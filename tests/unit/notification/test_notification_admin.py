"""Subscriptions and partners' webhooks are validated before they are stored."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.notification.admin import PartnerWebhookRequest, SubscriptionRequest


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Bappeda Kota Bogor",
        "stakeholder": "regional_government",
        "scope": "32.71",
        "kinds": ["participant.registered", "coverage.milestone"],
        "channel": "EMAIL",
        "address": "bappeda@kotabogor.go.id",
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "changes",
    [
        {"scope": "ID"},
        {"scope": "32"},
        {"scope": "32.71.01"},
        {"channel": "SMS", "address": "+6281234567890"},
        {"channel": "WEBHOOK", "address": "https://dprd.kotabogor.go.id/hook", "secret": "s" * 16},
        {"channel": "WEBHOOK", "address": "http://127.0.0.1:8099/hook"},
        {"language": "en", "digest": "daily"},
    ],
)
def test_well_formed_subscriptions_are_accepted(changes: dict[str, Any]) -> None:
    SubscriptionRequest.model_validate(request(**changes))


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"scope": "99.99"}, "unknown region code"),
        ({"scope": "32.71.99"}, "unknown region code"),
        ({"address": "not an address"}, "not an e-mail address"),
        ({"address": "a@b"}, "not an e-mail address"),
        ({"channel": "SMS", "address": "081234"}, "international form"),
        ({"channel": "WEBHOOK", "address": "ftp://example.org/x"}, "http(s) URL"),
        ({"channel": "WEBHOOK", "address": "https://x.example", "secret": "short"}, "at least 16"),
        ({"secret": "s" * 20}, "only webhook subscriptions"),
        ({"kinds": ["digest"]}, "not a kind of news"),
        ({"kinds": []}, "at least 1"),
        ({"stakeholder": "journalist"}, "Input should be"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_malformed_subscriptions_are_refused_with_a_reason(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why.replace("(", r"\(").replace(")", r"\)")):
        SubscriptionRequest.model_validate(request(**changes))


def test_a_partner_webhook_needs_an_http_url_and_a_long_enough_secret() -> None:
    PartnerWebhookRequest.model_validate({"partner_id": "bogor-hr", "webhook_url": "https://hr.example/x"})
    with pytest.raises(ValidationError, match="http"):
        PartnerWebhookRequest.model_validate({"partner_id": "bogor-hr", "webhook_url": "hr.example/x"})
    with pytest.raises(ValidationError, match="at least 16"):
        PartnerWebhookRequest.model_validate(
            {"partner_id": "bogor-hr", "webhook_url": "https://hr.example/x", "secret": "123"}
        )
    with pytest.raises(ValidationError, match="pattern"):
        PartnerWebhookRequest.model_validate({"partner_id": "bogor hr!", "webhook_url": "https://hr.example/x"})
