"""The channels: e-mail over SMTP, webhooks over HTTP, SMS through an HTTP gateway.

A channel makes one attempt and says how it went: it returns on success, raises `TransientDeliveryError` when
trying again may help (timeouts, connection errors, HTTP 5xx/429, SMTP 4xx) and `PermanentDeliveryError` when
it cannot (HTTP 4xx, SMTP 5xx, no signing secret). Retrying, timing out and recording are the dispatcher's.
`channels_for` builds them from the settings.
"""

from __future__ import annotations

import contextlib
import email.policy
import json
import re
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
_WIRE_POLICY = _MAIL_POLICY.clone(linesep="\r\n")
#: A header value the email package writes verbatim: printable ASCII words, single spaces, no encoded-word.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN_LENGTH = 900  # with its name, a header line stays under the 998 characters past which it is folded
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
#: "Service not available, closing transmission channel": what a relay says to a connection it timed out.
_SMTP_CLOSING = 421


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


class SmtpPool:
    """Open SMTP connections to one relay (host, port, user), reused attempt after attempt.

    A connection is taken for one message and given back when the server accepted it or refused it cleanly
    (the envelope reset with RSET); anything else (a timeout, a cancelled attempt, a dropped connection)
    closes it, since its state is unknown. At most `size` connections are kept open: the e-mail lane's
    concurrency, so the lane never waits for the pool nor the pool for the lane.

    A connection may have been closed by the server while it sat idle; that shows at MAIL FROM, before
    anything of the message was sent, so the message goes out once on a fresh connection. A failure after
    that point is the attempt's failure: never retried here, so a message is sent at most once per attempt.
    """

    def __init__(self, config: SmtpConfig, size: int) -> None:
        self.config = config
        self._size = size
        self._idle: list[aiosmtplib.SMTP] = []

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        connection, reused = await self._take()
        try:
            try:
                await connection.mail(sender)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
                closing = isinstance(exc, aiosmtplib.SMTPServerDisconnected) or exc.code == _SMTP_CLOSING
                if not (reused and closing):
                    raise
                connection.close()
                connection, reused = await self._connect(), False
                await connection.mail(sender)
            await connection.rcpt(recipient)
            await connection.data(message)
        except aiosmtplib.SMTPResponseException:
            await self._reset(connection)  # refused in order: the connection is fine once the envelope is reset
            raise
        except BaseException:
            connection.close()
            raise
        self._give_back(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await connection.quit(timeout=1)
            connection.close()

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely to have timed out
            if connection.is_connected:
                return connection, True
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self.config
        connection = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls={"starttls": True, "tls": None, "none": False}[config.security],
            timeout=config.timeout,
        )
        await connection.connect()
        return connection

    async def _reset(self, connection: aiosmtplib.SMTP) -> None:
        try:
            await connection.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            connection.close()
            return
        self._give_back(connection)

    def _give_back(self, connection: aiosmtplib.SMTP) -> None:
        if connection.is_connected and len(self._idle) < self._size:
            self._idle.append(connection)
        else:
            connection.close()


class EmailChannel:
    def __init__(self, pool: SmtpPool) -> None:
        self._config = pool.config
        self._pool = pool
        self._envelope_sender = parseaddr(self._config.sender)[1]
        self._domain = self._envelope_sender.rpartition("@")[2] or "lindungi.local"
        # The From line as the email package writes it; the fast path below is taken only when it is verbatim.
        probe = EmailMessage(policy=_MAIL_POLICY)
        probe["From"] = self._config.sender
        self._plain_sender = str(probe["From"]) == self._config.sender and _plain(self._config.sender)

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage(policy=_MAIL_POLICY)
        message["From"] = self._config.sender
        message["To"] = outgoing.address
        message["Subject"] = outgoing.subject
        # The delivery id is the Message-ID: a mail system that sees the same notification twice (the one
        # window the ledger cannot close) can tell it is the same message.
        message["Message-ID"] = f"<{outgoing.delivery_id}@{self._domain}>"
        message["X-Lindungi-Idempotency-Key"] = outgoing.delivery_id
        message["X-Lindungi-Kind"] = outgoing.kind
        # 7-bit when it is ASCII, else quoted-printable: both stay readable in a raw .eml (the local mail sink
        # keeps those), where base64 would not.
        message.set_content(outgoing.text, cte="7bit" if outgoing.text.isascii() else "quoted-printable")
        message["Content-Language"] = outgoing.language  # after set_content, which drops Content-* headers
        return message

    def wire(self, outgoing: Outgoing) -> bytes:
        """The message as sent, CRLF line ends and headers unfolded up to 998 characters (aiosmtplib would
        re-fold every header at 78 with its own policy). Plain ASCII text and headers, the usual case, are
        written directly: the same bytes `compose` gives, at a fraction of the email package's cost."""
        headers = (outgoing.subject, outgoing.delivery_id, outgoing.kind, outgoing.language)
        if not (
            self._plain_sender
            and _ADDRESS.fullmatch(outgoing.address)
            and all(_plain(value) for value in headers)
            and outgoing.text.isascii()
        ):
            return self.compose(outgoing).as_bytes(policy=_WIRE_POLICY)
        body = b"\r\n".join(outgoing.text.encode("ascii").splitlines())
        return (
            (
                f"From: {self._config.sender}\r\n"
                f"To: {outgoing.address}\r\n"
                f"Subject: {outgoing.subject}\r\n"
                f"Message-ID: <{outgoing.delivery_id}@{self._domain}>\r\n"
                f"X-Lindungi-Idempotency-Key: {outgoing.delivery_id}\r\n"
                f"X-Lindungi-Kind: {outgoing.kind}\r\n"
                'Content-Type: text/plain; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: 7bit\r\n"
                "MIME-Version: 1.0\r\n"
                f"Content-Language: {outgoing.language}\r\n"
                "\r\n"
            ).encode("ascii")
            + body
            + b"\r\n"
        )

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002 - SMTP is not signed
        try:
            await self._pool.send(self._envelope_sender, outgoing.address, self.wire(outgoing))
        except aiosmtplib.SMTPRecipientRefused as exc:
            error = f"recipient refused: SMTP [{exc.code}]"
            if 500 <= exc.code < 600:
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


def _plain(value: str) -> bool:
    return len(value) <= _PLAIN_LENGTH and "=?" not in value and _PLAIN.fullmatch(value) is not None


def smtp_relay(settings: NotificationSettings) -> SmtpConfig:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=password,
        sender=settings.mail_from,
        timeout=settings.send_timeout,
    )


def http_limits(settings: NotificationSettings) -> httpx.Limits:
    """Connections for the lanes that post (webhooks, the SMS gateway): as many as may be in flight, all
    kept alive, so an attempt never waits for the pool and never opens a connection a previous one left."""
    connections = settings.webhook_concurrency + settings.sms_concurrency
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


def channels_for(
    settings: NotificationSettings, http: httpx.AsyncClient, smtp: SmtpPool
) -> dict[DeliveryChannel, Channel]:
    """Every channel as the settings configure it; SMS without a gateway fails each delivery visibly."""
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
