"""The channels: e-mail over SMTP, webhooks over HTTP, SMS through an HTTP gateway.

A channel makes one attempt and says how it went: it returns on success, raises `TransientDeliveryError` when
trying again may help (timeouts, connection errors, HTTP 5xx/429, SMTP 4xx) and `PermanentDeliveryError` when
it cannot (HTTP 4xx, SMTP 5xx, no signing secret). Retrying, timing out and recording are the dispatcher's.
`channels_for` builds them from the settings.
"""

from __future__ import annotations

import email.policy
import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING, Literal, Protocol

import aiosmtplib
import httpx

from services.notification.signature import signed_headers
from shared.events import DeliveryChannel

if TYPE_CHECKING:
    from services.notification.settings import NotificationSettings

USER_AGENT = "Lindungi-Notification/1"
#: HTTP answers worth another attempt: timeouts, conflicts on an idempotency key in use, rate limits, 5xx.
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# Fold headers only past RFC 5322's hard limit: a subject folded at 78 characters reads oddly in some clients.
_MAIL_POLICY = email.policy.default.clone(max_line_length=998)


class DeliveryError(Exception):
    """An attempt failed; the message says why without personal data beyond the masked address."""


class TransientDeliveryError(DeliveryError):
    pass


class PermanentDeliveryError(DeliveryError):
    pass


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a channel needs for one attempt, read from the ledger."""

    delivery_id: str
    kind: str
    channel: DeliveryChannel
    address: str
    language: str
    subject: str
    text: str
    payload: str | None


class Channel(Protocol):
    async def send(self, outgoing: Outgoing, secret: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: Literal["none", "starttls", "tls"]
    username: str | None
    password: str | None
    sender: str
    timeout: float


class EmailChannel:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage(policy=_MAIL_POLICY)
        message["From"] = self._config.sender
        message["To"] = outgoing.address
        message["Subject"] = outgoing.subject
        # The delivery id is the Message-ID: a mail system that sees the same notification twice (the one
        # window the ledger cannot close) can tell it is the same message.
        domain = parseaddr(self._config.sender)[1].rpartition("@")[2] or "lindungi.local"
        message["Message-ID"] = f"<{outgoing.delivery_id}@{domain}>"
        message["X-Lindungi-Idempotency-Key"] = outgoing.delivery_id
        message["X-Lindungi-Kind"] = outgoing.kind
        message["Content-Language"] = outgoing.language
        # 7-bit when it is ASCII, else quoted-printable: both stay readable in a raw .eml (the local mail sink
        # keeps those), where base64 would not.
        message.set_content(outgoing.text, cte="7bit" if outgoing.text.isascii() else "quoted-printable")
        return message

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002 - SMTP is not signed
        config = self._config
        try:
            # Flattened here: aiosmtplib would re-fold every header at 78 characters with its own policy.
            await aiosmtplib.send(
                self.compose(outgoing).as_bytes(policy=_MAIL_POLICY.clone(linesep="\r\n")),
                sender=parseaddr(config.sender)[1],
                recipients=[outgoing.address],
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.security == "tls",
                start_tls={"starttls": True, "tls": None, "none": False}[config.security],
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            error = f"recipient refused: SMTP {codes}"
            if all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(error) from None
            raise TransientDeliveryError(error) from None
        except aiosmtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.code}: {exc.message}"
            if 500 <= exc.code < 600:
                raise PermanentDeliveryError(error) from None
            raise TransientDeliveryError(error) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(f"SMTP {type(exc).__name__}: {exc}") from None


async def post_signed(  # noqa: PLR0913 - one signed request: where, what, with which key, about what
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str,
    delivery_id: str,
    kind: str,
) -> None:
    """POST a signed JSON body; classify the answer into success, transient or permanent failure."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Lindungi-Kind": kind,
        **signed_headers(secret, body, delivery_id),
    }
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise TransientDeliveryError(f"HTTP timeout ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise TransientDeliveryError(f"HTTP {type(exc).__name__}: {exc}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    error = f"HTTP {status}"
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransientDeliveryError(error)
    raise PermanentDeliveryError(error)


class WebhookChannel:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:
        if not secret:
            raise PermanentDeliveryError("no signing secret for this webhook")
        if outgoing.payload is None:
            raise PermanentDeliveryError("nothing to post: the delivery has no payload")
        await post_signed(
            self._client,
            outgoing.address,
            outgoing.payload.encode(),
            secret=secret,
            delivery_id=outgoing.delivery_id,
            kind=outgoing.kind,
        )


class SmsGatewayChannel:
    """SMS through an HTTP gateway: the webhook machinery with the gateway's own URL, secret and body."""

    def __init__(self, client: httpx.AsyncClient, url: str, secret: str, sender: str) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        self._sender = sender

    def body(self, outgoing: Outgoing) -> bytes:
        payload = {
            "to": outgoing.address,
            "from": self._sender,
            "text": outgoing.text,
            "reference": outgoing.delivery_id,
            "language": outgoing.language,
        }
        return json.dumps(payload, ensure_ascii=False).encode()

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002 - the gateway's own
        await post_signed(
            self._client,
            self._url,
            self.body(outgoing),
            secret=self._secret,
            delivery_id=outgoing.delivery_id,
            kind=outgoing.kind,
        )


class UnconfiguredChannel:
    """A channel this deployment has not set up (no SMS gateway): each delivery fails at once, visibly."""

    def __init__(self, why: str) -> None:
        self._why = why

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
        raise PermanentDeliveryError(self._why)


def channels_for(settings: NotificationSettings, http: httpx.AsyncClient) -> dict[DeliveryChannel, Channel]:
    """Every channel as the settings configure it; SMS without a gateway fails each delivery visibly."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=password,
        sender=settings.mail_from,
        timeout=settings.send_timeout,
    )
    sms: Channel = UnconfiguredChannel("no SMS gateway configured (NOTIFICATION_SMS_GATEWAY_URL)")
    if settings.sms_gateway_url and settings.sms_gateway_secret:
        sms = SmsGatewayChannel(
            http, settings.sms_gateway_url, settings.sms_gateway_secret.get_secret_value(), settings.sms_sender
        )
    return {
        DeliveryChannel.EMAIL: EmailChannel(smtp),
        DeliveryChannel.WEBHOOK: WebhookChannel(http),
        DeliveryChannel.SMS: sms,
    }


def reachable(settings: NotificationSettings) -> frozenset[DeliveryChannel]:
    """The channels a worker's message may take: without an SMS gateway a worker is told by e-mail only."""
    sms = {DeliveryChannel.SMS} if settings.sms_gateway_url else set()
    return frozenset({DeliveryChannel.EMAIL, DeliveryChannel.WEBHOOK, *sms})
