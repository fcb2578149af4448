"""The SMTP connection pool against a real SMTP server on 127.0.0.1 (aiosmtpd, in this process's thread).

What is checked: connections are reused; one the relay dropped while idle is replaced before anything of the
message went out, so the message arrives once; a refused recipient resets the envelope and keeps the
connection; an attempt cut short, or a connection lost mid-message, closes the connection and is not retried
here (once per attempt: retrying is the dispatcher's).
"""

from __future__ import annotations

import asyncio
import email.policy
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notification.channels import (
    _WIRE_POLICY,
    EmailChannel,
    Outgoing,
    PermanentDeliveryError,
    SmtpConfig,
    SmtpPool,
    TransientDeliveryError,
)
from shared.events import DeliveryChannel
from tests.support import free_port

SENDER = "notifikasi@lindungi.local"


class Relay:
    """aiosmtpd's handler: records each accepted message and the connection (client port) it came on; can
    refuse one address, hold another's DATA, and end the next MAIL FROM with a 421 or a dropped connection."""

    def __init__(self) -> None:
        self.accepted: list[tuple[int, str]] = []  # (client port, recipient)
        self.mail_from_ports: list[int] = []
        self.interrupt_next_mail: str | None = None  # "421" or "drop"
        self.drop_data_of: str | None = None
        self.lock = threading.Lock()

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, _options: Any) -> str:  # noqa: N802
        with self.lock:
            self.mail_from_ports.append(session.peer[1])
            interrupt, self.interrupt_next_mail = self.interrupt_next_mail, None
        if interrupt == "drop":
            server.transport.close()
        if interrupt is not None:
            return "421 closing the idle connection"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any) -> str:  # noqa: N802
        if address.startswith("nobody@"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        recipient = envelope.rcpt_tos[0]
        if recipient.startswith("slow@"):
            await asyncio.sleep(2)
        if recipient == self.drop_data_of:
            server.transport.close()
            return "451 gone"
        with self.lock:
            self.accepted.append((session.peer[1], recipient))
        return "250 Message accepted"

    @property
    def connections(self) -> set[int]:
        with self.lock:
            return {port for port, _ in self.accepted}


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler, port = Relay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def pool(port: int, size: int = 2) -> SmtpPool:
    return SmtpPool(SmtpConfig("127.0.0.1", port, "none", None, None, f"Lindungi <{SENDER}>", timeout=5), size)


def message(recipient: str) -> bytes:
    return f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: Kepesertaan\r\n\r\nTerdaftar.\r\n".encode()


async def test_messages_go_out_on_the_connections_already_open(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    smtp = pool(port)
    try:
        for n in range(5):
            await smtp.send(SENDER, f"w{n}@example.org", message(f"w{n}@example.org"))
        assert len(handler.accepted) == 5
        assert len(handler.connections) == 1
        # Four at once open four; the pool keeps two of them for what comes next.
        await asyncio.gather(*(smtp.send(SENDER, f"c{n}@example.org", message("c")) for n in range(4)))
        assert len(handler.connections) == 4
        before = set(handler.connections)
        await asyncio.gather(*(smtp.send(SENDER, f"d{n}@example.org", message("d")) for n in range(2)))
        assert handler.connections == before
    finally:
        await smtp.close()


@pytest.mark.parametrize("how", ["421", "drop"])
async def test_a_connection_the_relay_closed_while_idle_is_replaced_and_the_message_sent_once(
    relay: tuple[Relay, int], how: str
) -> None:
    handler, port = relay
    smtp = pool(port)
    try:
        await smtp.send(SENDER, "first@example.org", message("first@example.org"))
        handler.interrupt_next_mail = how
        await smtp.send(SENDER, "second@example.org", message("second@example.org"))
        assert [recipient for _, recipient in handler.accepted] == ["first@example.org", "second@example.org"]
        assert len(handler.connections) == 2
        assert len(handler.mail_from_ports) == 3  # the refused MAIL FROM, then the same message once more
    finally:
        await smtp.close()


async def test_a_refused_recipient_resets_the_envelope_and_keeps_the_connection(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    smtp = pool(port)
    try:
        with pytest.raises(aiosmtplib.SMTPRecipientRefused):
            await smtp.send(SENDER, "nobody@example.org", message("nobody@example.org"))
        await smtp.send(SENDER, "after@example.org", message("after@example.org"))
        assert handler.accepted == [(handler.mail_from_ports[0], "after@example.org")]
        assert len(set(handler.mail_from_ports)) == 1
    finally:
        await smtp.close()


async def test_an_attempt_cut_short_closes_its_connection(relay: tuple[Relay, int]) -> None:
    handler, port = relay
    smtp = pool(port)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the dispatcher's attempt timeout
                await smtp.send(SENDER, "slow@example.org", message("slow@example.org"))
        await smtp.send(SENDER, "next@example.org", message("next@example.org"))
        assert len(set(handler.mail_from_ports)) == 2  # the cut connection was not given to the next message
    finally:
        await smtp.close()


async def test_a_connection_lost_mid_message_fails_the_attempt_and_is_not_retried_here(
    relay: tuple[Relay, int],
) -> None:
    handler, port = relay
    smtp = pool(port)
    try:
        await smtp.send(SENDER, "first@example.org", message("first@example.org"))
        handler.drop_data_of = "lost@example.org"
        with pytest.raises((aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPDataError)):
            await smtp.send(SENDER, "lost@example.org", message("lost@example.org"))
        assert len(handler.mail_from_ports) == 2  # no second try on a fresh connection
        await smtp.send(SENDER, "next@example.org", message("next@example.org"))
        assert len(handler.accepted) == 2
    finally:
        await smtp.close()


async def test_the_email_channel_says_which_failures_are_worth_another_attempt(relay: tuple[Relay, int]) -> None:
    _, port = relay
    smtp = pool(port)
    channel = EmailChannel(smtp)

    def outgoing(address: str) -> Outgoing:
        return Outgoing("d1", "participant.registered", DeliveryChannel.EMAIL, address, "id", "Subjek", "Isi", None)

    try:
        with pytest.raises(PermanentDeliveryError, match=r"recipient refused: SMTP \[550\]"):
            await channel.send(outgoing("nobody@example.org"), None)
        await channel.send(outgoing("siti@example.org"), None)
    finally:
        await smtp.close()
    closed = SmtpPool(SmtpConfig("127.0.0.1", free_port(), "none", None, None, SENDER, timeout=5), 1)
    with pytest.raises(TransientDeliveryError):
        await EmailChannel(closed).send(outgoing("siti@example.org"), None)


# --- the message on the wire --------------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=120)


def _channel(sender: str = f"Lindungi <{SENDER}>") -> EmailChannel:
    return EmailChannel(SmtpPool(SmtpConfig("127.0.0.1", 25, "none", None, None, sender, timeout=5), 1))


def _mail(address: str, subject: str, text: str) -> Outgoing:
    return Outgoing(
        "xdodio7cxna33j3q", "participant.registered", DeliveryChannel.EMAIL, address, "id", subject, text, None
    )


@settings(max_examples=300, deadline=None)
@given(subject=st.one_of(_PRINTABLE, _TEXT), text=st.one_of(_PRINTABLE, _TEXT), address=st.sampled_from(
    ["siti.aminah@example.org", "a+b@mail.example.co.id", "Siti <siti@example.org>", "x@localhost"]
))  # fmt: skip
def test_the_message_written_directly_is_the_one_the_email_package_writes(
    subject: str, text: str, address: str
) -> None:
    channel = _channel()
    outgoing = _mail(address, " ".join(subject.splitlines()), text)  # a subject is one line
    assert channel.wire(outgoing) == channel.compose(outgoing).as_bytes(policy=_WIRE_POLICY)


def test_a_real_notification_is_written_directly_and_reads_back_whole() -> None:
    text = "Lindungi: Anda terdaftar sebagai peserta BPJS Ketenagakerjaan (NIK 3271**********01).\nProgram: JKK, JKM.\n"
    outgoing = _mail("siti.aminah@example.org", "Anda terdaftar sebagai peserta BPJS Ketenagakerjaan", text)
    channel = _channel()
    raw = channel.wire(outgoing)
    assert raw == channel.compose(outgoing).as_bytes(policy=_WIRE_POLICY)
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert (parsed["Message-ID"], parsed["X-Lindungi-Idempotency-Key"]) == (
        "<xdodio7cxna33j3q@lindungi.local>",
        "xdodio7cxna33j3q",
    )
    assert (parsed["Content-Language"], parsed["Subject"]) == ("id", outgoing.subject)
    assert parsed.get_content().replace("\r\n", "\n") == text  # type: ignore[attr-defined]


def test_a_sender_the_email_package_would_rewrite_takes_the_long_way() -> None:
    channel = _channel('"BPJS, Lindungi"   <notifikasi@lindungi.local>')
    outgoing = _mail("siti@example.org", "Subjek", "Isi")
    assert channel.wire(outgoing) == channel.compose(outgoing).as_bytes(policy=_WIRE_POLICY)
