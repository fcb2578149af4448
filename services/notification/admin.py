"""Managing who hears what: subscriptions and partners' webhooks, validated before anything is stored.

The HTTP endpoints (`/subscriptions`, `/partners`), the `lindungi subscriptions` CLI (through those endpoints)
and the seed file all go through these functions, so a region code that does not exist or an address that
is not one never reaches the database.

Application layer, like `service.py`, but kept apart from it: the notifier reacts to events and owns the
ledger's flow, this module answers operators' requests; they share only the store, and together they would
no longer read as one idea (nor fit in one module).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from services.notification.domain.addresses import display_address
from services.notification.domain.messages import (
    SUBSCRIBABLE_KINDS,
    DigestMode,
    Kind,
    Language,
    PartnerWebhook,
    Stakeholder,
    Subscription,
)
from shared.events import DeliveryChannel
from shared.regions import NATIONAL_CODE, load_regions

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

# Deliberately plain: one @, no spaces, a dotted domain. Deliverability is the SMTP server's to judge.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
# E.164: a plus, a country code and up to 15 digits in all (Indonesian mobiles: +628...).
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MIN_SECRET_LENGTH = 16

Secret = Annotated[SecretStr, Field(description=f"signing secret, at least {MIN_SECRET_LENGTH} characters")]


class AdminStore(Protocol):
    async def save_subscription(self, subscription: Subscription, secret: str | None) -> None: ...

    async def delete_subscription(self, subscription_id: str) -> bool: ...

    async def all_subscriptions(self, scope: str | None = None) -> list[Subscription]: ...

    async def save_partner(self, webhook: PartnerWebhook, secret: str) -> None: ...

    async def partner_webhooks(self, partner_ids: Iterable[str] | None = None) -> dict[str, PartnerWebhook]: ...


def valid_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("a webhook address is an http(s) URL with a host")
    return url


def valid_address(channel: DeliveryChannel, address: str) -> str:
    address = address.strip()
    if channel is DeliveryChannel.EMAIL and not _EMAIL.match(address):
        raise ValueError("not an e-mail address")
    if channel is DeliveryChannel.SMS and not _PHONE.match(address):
        raise ValueError("a phone number in international form, e.g. +6281234567890")
    if channel is DeliveryChannel.WEBHOOK:
        valid_url(address)
    return address


class SubscriptionRequest(BaseModel):
    """`POST /subscriptions`: a stakeholder asks to hear about `kinds` of events in `scope` and below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str | None = Field(default=None, pattern=_ID, description="omit to get a new id")
    name: str = Field(min_length=1, max_length=200, examples=["Bappeda Kota Bogor"])
    stakeholder: Stakeholder
    scope: str = Field(description="`ID` (national), a province, a regency/city or a kecamatan code")
    kinds: list[Kind] = Field(min_length=1)
    channel: DeliveryChannel
    address: str = Field(min_length=3, max_length=2048)
    language: Language = "id"
    digest: DigestMode = "none"
    secret: Secret | None = Field(default=None, description="webhooks only; generated when omitted")

    @field_validator("scope")
    @classmethod
    def _scope_exists(cls, scope: str) -> str:
        if scope != NATIONAL_CODE and scope not in load_regions():
            raise ValueError(f"unknown region code {scope!r} (Kemendagri code such as 32, 32.71 or 32.71.01, or ID)")
        return scope

    @field_validator("kinds")
    @classmethod
    def _kinds_subscribable(cls, kinds: list[Kind]) -> list[Kind]:
        if Kind.DIGEST in kinds:
            raise ValueError("`digest` is a way of receiving (digest: daily), not a kind of news")
        if not set(kinds) <= SUBSCRIBABLE_KINDS:
            others = ", ".join(sorted(k.value for k in set(kinds) - SUBSCRIBABLE_KINDS))
            raise ValueError(f"{others}: told to the partner that sent the request only (subscribe to budget.hold)")
        return kinds

    @model_validator(mode="after")
    def _address_fits_channel(self) -> SubscriptionRequest:
        valid_address(self.channel, self.address)
        if self.secret is not None:
            if self.channel is not DeliveryChannel.WEBHOOK:
                raise ValueError("only webhook subscriptions have a signing secret")
            if len(self.secret.get_secret_value()) < MIN_SECRET_LENGTH:
                raise ValueError(f"the signing secret needs at least {MIN_SECRET_LENGTH} characters")
        return self


class PartnerWebhookRequest(BaseModel):
    """`POST /partners`: where a partner wants its rejections, and the secret it verifies them with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partner_id: str = Field(pattern=_ID)
    webhook_url: str = Field(max_length=2048)
    secret: Secret | None = Field(default=None, description="generated when omitted; shown once")

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, url: str) -> str:
        return valid_url(url)

    @field_validator("secret")
    @classmethod
    def _secret_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"the signing secret needs at least {MIN_SECRET_LENGTH} characters")
        return secret


def subscription_view(subscription: Subscription) -> dict[str, Any]:
    """What the API shows: everything but the secret; the address masked like everywhere else."""
    return {
        "subscription_id": subscription.subscription_id,
        "name": subscription.name,
        "stakeholder": subscription.stakeholder.value,
        "scope": subscription.scope,
        "kinds": sorted(k.value for k in subscription.kinds),
        "channel": subscription.channel.value,
        "address": display_address(subscription.channel, subscription.address),
        "language": subscription.language,
        "digest": subscription.digest,
    }


def partner_view(webhook: PartnerWebhook) -> dict[str, Any]:
    return {
        "partner_id": webhook.partner_id,
        "webhook_url": display_address(DeliveryChannel.WEBHOOK, webhook.url),
    }


async def subscribe(store: AdminStore, request: SubscriptionRequest) -> dict[str, Any]:
    """Create or replace a subscription; a webhook without a secret gets a fresh one, returned only here."""
    subscription = Subscription(
        subscription_id=request.subscription_id or uuid.uuid4().hex[:16],
        name=request.name,
        stakeholder=request.stakeholder,
        scope=request.scope,
        kinds=frozenset(request.kinds),
        channel=request.channel,
        address=request.address.strip(),
        language=request.language,
        digest=request.digest,
    )
    secret: str | None = None
    if request.channel is DeliveryChannel.WEBHOOK:
        secret = request.secret.get_secret_value() if request.secret else secrets.token_urlsafe(32)
    await store.save_subscription(subscription, secret)
    view = subscription_view(subscription)
    if secret is not None and request.secret is None:
        view["secret"] = secret
    return view


async def unsubscribe(store: AdminStore, subscription_id: str) -> bool:
    return await store.delete_subscription(subscription_id)


async def set_partner_webhook(store: AdminStore, request: PartnerWebhookRequest) -> dict[str, Any]:
    secret = request.secret.get_secret_value() if request.secret else secrets.token_urlsafe(32)
    webhook = PartnerWebhook(request.partner_id, request.webhook_url)
    await store.save_partner(webhook, secret)
    view = partner_view(webhook)
    if request.secret is None:
        view["secret"] = secret
    return view


async def load_seed(store: AdminStore, path: Path) -> tuple[int, int]:
    """Partners and subscriptions from a JSON file (`{"partners": [...], "subscriptions": [...]}`).

    Applied at every start: entries are upserted by id, so a seed names its subscription ids.
    """
    seed = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    partners = [PartnerWebhookRequest.model_validate(item) for item in seed.get("partners", [])]
    subscriptions = [SubscriptionRequest.model_validate(item) for item in seed.get("subscriptions", [])]
    for partner in partners:
        if partner.secret is None:
            raise ValueError(f"seed partner {partner.partner_id} needs its secret: a generated one would be lost")
        await set_partner_webhook(store, partner)
    for subscription in subscriptions:
        if subscription.subscription_id is None:
            raise ValueError("a seeded subscription needs a subscription_id, or every start would add another")
        if subscription.channel is DeliveryChannel.WEBHOOK and subscription.secret is None:
            raise ValueError(f"seed subscription {subscription.subscription_id} needs its webhook secret")
        await subscribe(store, subscription)
    return len(partners), len(subscriptions)
