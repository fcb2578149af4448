"""The notification service as a separate process against the real Kafka broker and MongoDB server, a real
SMTP server and a real HTTP receiver: each audience and channel, scope, milestones, digests, redelivery,
failures and slowness, and no NIK in clear anywhere.

One module: each test is one scenario against the same running service, mail server and receiver
(conftest.py), read back by the same few helpers; splitting it would only scatter them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notification import signature
from shared import events as ev
from tests.integration.notification.conftest import (
    SMS_GATEWAY_SECRET,
    Notification,
    body,
    eventually,
    read_topic,
)
from tests.support import publish
from tests.unit.notification import samples

pytestmark = pytest.mark.integration

PARTNER_SECRET = "bogor-hr-signing-secret-0123456789"  # noqa: S105 - test receivers' secrets
CITY_WEBHOOK_SECRET = "dprd-kota-bogor-secret-0123456789"  # noqa: S105


def worker(
    pid: str, email: str | None = None, phone: str | None = None, language: str = "id", **changes: Any
) -> ev.Participant:
    contact = ev.Contact(email=email, phone=phone, language=language) if (email or phone) else None
    return samples.participant(pid=pid, nik_hash=pid.rjust(64, "0"), contact=contact, **changes)


def subscription(scope: str, address: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subscription_id": f"sub-{scope.replace('.', '-')}",
        "name": f"Pemerintah {scope}",
        "stakeholder": "regional_government",
        "scope": scope,
        "kinds": ["participant.registered"],
        "channel": "EMAIL",
        "address": address,
    }
    body.update(changes)
    return body


async def subscribe(notification: Notification, *subscriptions: dict[str, Any]) -> None:
    for item in subscriptions:
        response = await notification.api("POST", "/subscriptions", item)
        assert response.status_code == 201, response.text


def verified(request: Any, secret: str) -> bool:
    return signature.verify(
        secret, request.headers["x-lindungi-timestamp"], request.headers["x-lindungi-signature"], request.body
    )


async def test_the_worker_hears_each_change_by_email_and_sms_in_their_language(
    notification: Notification,
) -> None:
    await notification.start()
    siti = worker("1", email="siti@example.org", phone="+6281234567890")
    john = worker("2", email="john@example.org", language="en")
    silent = worker("3")  # no consent: no contact in the outcome
    terminated = worker("4", email="budi@example.org", status=ev.ParticipantStatus.TERMINATED)
    await notification.publish(
        samples.registered(siti),
        samples.registered(john),
        samples.registered(silent),
        samples.updated(worker("5", email="ani@example.org")),
        samples.terminated(terminated),
        samples.reactivated(worker("6", email="dewi@example.org")),
        samples.terminated(worker("7", email="alm@example.org"), reason=ev.TerminationReason.DECEASED),
    )

    mails = await eventually(
        lambda: len(notification.mail.messages) >= 5 and notification.mail.messages, what="5 e-mails"
    )
    sms = await eventually(lambda: notification.web.to("/sms"), what="the SMS")

    [to_siti] = notification.mail.to("siti@example.org")
    assert to_siti["Subject"] == "Anda terdaftar sebagai peserta BPJS Ketenagakerjaan"
    text = body(to_siti)
    assert "NIK 3271**********01" in text
    assert "Program: JKK, JKM." in text
    assert "Iuran Rp16.800 per bulan, dibayar oleh APBD Kota Bogor." in text
    [to_john] = notification.mail.to("john@example.org")
    assert "paid by the regional budget (APBD) of Kota Bogor" in body(to_john)
    assert "telah diperbarui" in body(notification.mail.to("ani@example.org")[0])
    assert "telah berakhir (mengundurkan diri)" in body(notification.mail.to("budi@example.org")[0])
    assert "aktif kembali" in body(notification.mail.to("dewi@example.org")[0])
    assert notification.mail.to("alm@example.org") == []
    assert len(mails) == 5

    [gateway] = sms
    assert verified(gateway, SMS_GATEWAY_SECRET)
    payload = gateway.json()
    assert payload["to"] == "+6281234567890"
    assert "dibayar oleh APBD Kota Bogor" in payload["text"]
    assert gateway.headers["idempotency-key"] == payload["reference"]

    delivered = await eventually(
        lambda: _settled(notification, 6), what="six deliveries reported on the deliveries topic"
    )
    recipients = sorted(e.data.recipient for e in delivered)
    assert "s***@example.org" in recipients
    assert "+62********890" in recipients
    assert all(isinstance(e, ev.NotificationDelivered) and e.data.recipient_kind == "worker" for e in delivered)
    await notification.assert_no_nik_anywhere()


async def _settled(notification: Notification, count: int) -> list[Any] | None:
    events = await notification.deliveries()
    return events if len(events) >= count else None


async def test_the_partner_hears_every_rejection_by_a_signed_webhook(notification: Notification) -> None:
    await notification.start()
    response = await notification.api(
        "POST",
        "/partners",
        {
            "partner_id": "bogor-hr",
            "webhook_url": notification.web.url("/bogor-hr?token=abc"),
            "secret": PARTNER_SECRET,
        },
    )
    assert response.status_code == 201, response.text
    assert "secret" not in response.json()  # the partner chose it; it is never shown back
    listed = (await notification.api("GET", "/partners")).json()
    assert listed == [{"partner_id": "bogor-hr", "webhook_url": notification.web.url("/bogor-hr")}]

    leaky = ev.RejectionReason(
        code="DUPLICATE_PARTICIPANT",
        field="worker.nik",
        message_id="NIK 3271014506900001 sudah terdaftar",
        message_en="NIK 3271014506900001 is already registered",
    )
    event = samples.rejected(reasons=[*samples.rejected().data.reasons, leaky])
    await notification.publish(event, samples.rejected(partner_id="unknown-partner", request_id="req-x"))

    [call] = await eventually(lambda: notification.web.to("/bogor-hr?token=abc"), what="the partner's webhook")
    assert verified(call, PARTNER_SECRET)
    assert not verified(call, "some-other-partners-secret")
    payload = call.json()
    assert payload["type"] == "request.rejected"
    assert payload["request_id"] == "req-9"
    assert [r["code"] for r in payload["reasons"]] == [
        "NIK_CHECKSUM",
        "PROGRAM_NOT_OFFERED",
        "DUPLICATE_PARTICIPANT",
    ]
    assert payload["reasons"][0]["message_id"] == "NIK tidak valid: tanggal lahir tidak mungkin"
    assert payload["reasons"][2]["message_en"] == "NIK 3271**********01 is already registered"
    assert call.headers["idempotency-key"] == payload["delivery_id"]
    assert call.headers["x-lindungi-kind"] == "request.rejected"

    # A partner nobody configured a webhook for: visible to operators, not silently dropped.
    failed = await eventually(lambda: _failed_in_ledger(notification), what="the undeliverable rejection")
    assert [(d["recipient_id"], d["last_error"]) for d in failed] == [
        ("unknown-partner", "partner has no webhook configured")
    ]
    reported = await eventually(lambda: _settled(notification, 2), what="both outcomes on the deliveries topic")
    assert sorted((type(e).__name__, e.data.attempts) for e in reported) == [
        ("NotificationDelivered", 1),
        ("NotificationFailed", 0),
    ]
    await notification.assert_no_nik_anywhere()


async def test_subscribers_hear_what_happens_in_their_scope_and_below(notification: Notification) -> None:
    await notification.start()
    city_hook = notification.web.url("/dprd-kota-bogor")
    await subscribe(
        notification,
        subscription("32", "disnaker@jabarprov.go.id"),
        subscription("32.71", city_hook, channel="WEBHOOK", secret=CITY_WEBHOOK_SECRET, stakeholder="dprd"),
        subscription("32.71.01", "camat@bogorselatan.go.id"),
        subscription("ID", "pusat@bpjsketenagakerjaan.go.id", language="en", stakeholder="bpjs_branch"),
        subscription("31", "disnaker@jakarta.go.id"),
        subscription("32.73", "disnaker@bandung.go.id"),
    )
    for bad, why in [
        (subscription("99.99", "x@example.org"), "unknown region code"),
        (subscription("32", "not-an-address"), "not an e-mail address"),
        (subscription("32", "0812", channel="SMS"), "international form"),
        (subscription("32", "hook", channel="WEBHOOK"), "http(s) URL"),
    ]:
        response = await notification.api("POST", "/subscriptions", bad)
        assert response.status_code == 422
        assert why in response.text
    listed = (await notification.api("GET", "/subscriptions")).json()
    assert len(listed) == 6
    assert all("secret" not in s for s in listed)
    assert (await notification.api("DELETE", "/subscriptions", id="sub-32-73")).status_code == 204
    assert (await notification.api("DELETE", "/subscriptions", id="sub-32-73")).status_code == 404

    event = samples.registered(worker("10"))  # no contact: only stakeholders hear
    await notification.publish(event)

    await eventually(lambda: len(notification.mail.messages) >= 3, what="three stakeholder e-mails")
    [call] = await eventually(lambda: notification.web.to("/dprd-kota-bogor"), what="the city's webhook")
    assert verified(call, CITY_WEBHOOK_SECRET)
    assert call.json()["data"]["region_code"] == "32.71"
    assert "nik_masked" not in call.json()["data"]
    province = notification.mail.to("disnaker@jabarprov.go.id")[0]
    assert province["Subject"] == "Pendaftaran peserta: pekerja rentan, Kota Bogor"
    assert "dibayar oleh APBD Kota Bogor" in body(province)
    national = notification.mail.to("pusat@bpjsketenagakerjaan.go.id")[0]
    assert national["Subject"] == "Registration: vulnerable worker, Kota Bogor"
    # Intents are recorded before the offset is committed: the ledger says who was chosen, completely.
    chosen = {d["recipient_id"] for d in await notification.ledger(source_event_id=event.id)}
    assert chosen == {"sub-32", "sub-32-71", "sub-32-71-01", "sub-ID"}
    assert notification.mail.to("disnaker@jakarta.go.id") == []
    await notification.assert_no_nik_anywhere()


async def test_each_coverage_threshold_is_announced_once(notification: Notification) -> None:
    await notification.start()
    kinds = ["coverage.milestone"]
    await subscribe(
        notification,
        subscription("32.71", "bappeda@kotabogor.go.id", kinds=kinds),
        subscription("32", "bappeda@jabarprov.go.id", kinds=kinds),
        subscription("33", "bappeda@jatengprov.go.id", kinds=kinds),
    )
    start = datetime.now(UTC) - timedelta(days=3)
    # Target 80% of workers: progress is coverage / target.
    snapshots = [
        samples.aggregate(ratio=r, as_of=start + timedelta(hours=i)) for i, r in enumerate([0.1, 0.45, 0.5, 0.3, 0.62])
    ]
    await notification.publish_aggregates(*snapshots)
    await notification.publish_aggregates(snapshots[1], snapshots[4])  # redelivered snapshots
    await notification.publish_aggregates(samples.aggregate(ratio=0.8, as_of=start + timedelta(hours=9)))

    city = "bappeda@kotabogor.go.id"
    await eventually(lambda: any("100%" in m["Subject"] for m in notification.mail.to(city)), what="the 100% mail")
    subjects = [m["Subject"] for m in notification.mail.to(city)]
    assert subjects == [
        "Kota Bogor mencapai 50% dari target cakupan",
        "Kota Bogor mencapai 75% dari target cakupan",
        "Kota Bogor mencapai 100% dari target cakupan",
    ]
    assert "sekaligus melewati 25%" in body(notification.mail.to(city)[0])
    await eventually(lambda: len(notification.mail.to("bappeda@jabarprov.go.id")) == 3, what="the province's mails")
    assert notification.mail.to("bappeda@jatengprov.go.id") == []


async def test_a_stalled_region_is_escalated_to_its_province_once_per_period(
    notification: Notification,
) -> None:
    await notification.start(NOTIFICATION_STAGNATION_PERIOD="PT1H", NOTIFICATION_STAGNATION_CHECK_INTERVAL="0.3")
    kinds = ["coverage.stagnant"]
    await subscribe(
        notification,
        subscription("32", "gubernur@jabarprov.go.id", kinds=kinds),
        subscription("32.01", "bupati@bogorkab.go.id", kinds=kinds),
    )
    now = datetime.now(UTC)
    await notification.publish_aggregates(
        samples.aggregate("32.01", ratio=0.1, as_of=now - timedelta(minutes=90), region_name="Kabupaten Bogor"),
        samples.aggregate("32.71", ratio=0.1, as_of=now - timedelta(minutes=10)),  # moving recently
    )
    province = "gubernur@jabarprov.go.id"
    [escalation] = await eventually(lambda: notification.mail.to(province), what="the escalation")
    assert escalation["Subject"].startswith("Eskalasi: cakupan Kabupaten Bogor tidak bergerak sejak")
    checks = await notification.metric("notification_stagnation_checks_total")
    await eventually(
        lambda: _at_least(notification, "notification_stagnation_checks_total", checks + 3),
        what="three more checks",
    )
    assert len(notification.mail.to(province)) == 1
    assert notification.mail.to("bupati@bogorkab.go.id") == []  # escalation goes up, not to the region itself


async def _at_least(notification: Notification, metric: str, value: float) -> bool:
    return await notification.metric(metric) >= value


async def test_a_daily_digest_replaces_one_message_per_event(notification: Notification) -> None:
    await notification.start()
    await subscribe(
        notification,
        subscription("32.71", "walikota@kotabogor.go.id", digest="daily"),
        subscription("32", "disnaker@jabarprov.go.id"),
    )
    await notification.publish(*(samples.registered(worker(str(n))) for n in (21, 22, 23)))
    await eventually(lambda: len(notification.mail.to("disnaker@jabarprov.go.id")) == 3, what="immediate mails")
    assert notification.mail.to("walikota@kotabogor.go.id") == []

    flushed = await notification.api("POST", "/digests/flush")
    assert flushed.json() == {"digests": 1}
    [digest] = await eventually(lambda: notification.mail.to("walikota@kotabogor.go.id"), what="the digest")
    assert digest["Subject"].startswith("Ringkasan harian Lindungi")
    assert digest["Subject"].endswith(": 3 pemberitahuan")
    text = body(digest)
    assert "Pendaftaran peserta: 3" in text
    assert text.count("- Pendaftaran peserta: pekerja rentan, Kota Bogor") == 3
    assert (await notification.api("POST", "/digests/flush")).json() == {"digests": 0}
    # The ledger entry is the digest: asking again sends nothing more.
    [entry] = await notification.ledger(kind="digest")
    assert entry["status"] == "sent"
    assert len(entry["digest_items"]) == 3


async def test_redelivery_and_a_restarted_service_send_nothing_twice(notification: Notification) -> None:
    await notification.start()
    await notification.api(
        "POST",
        "/partners",
        {"partner_id": "bogor-hr", "webhook_url": notification.web.url("/hr"), "secret": PARTNER_SECRET},
    )
    await subscribe(notification, subscription("32", "disnaker@jabarprov.go.id"))
    originals = [
        samples.registered(worker("31", email="a31@example.org", phone="+6281200000031")),
        samples.registered(worker("32", email="a32@example.org")),
        samples.rejected(),
        samples.rejected(partner_id="nobody", request_id="req-n"),  # undeliverable: reported once as failed
    ]
    await notification.publish(*originals)
    await eventually(lambda: _settled(notification, 7), what="seven deliveries")

    def counts() -> tuple[int, ...]:
        return (
            len(notification.mail.to("a31@example.org")),
            len(notification.mail.to("a32@example.org")),
            len(notification.mail.to("disnaker@jabarprov.go.id")),
            len(notification.web.to("/hr")),
            len(notification.web.to("/sms")),
        )

    assert counts() == (1, 1, 2, 1, 1)
    # The same events again (a producer retry, a replay): then a new event behind them on the same partition.
    await notification.publish(*originals)
    await notification.publish(samples.registered(worker("31", email="sentinel1@example.org")))
    await eventually(lambda: notification.mail.to("sentinel1@example.org"), what="the first sentinel")
    assert counts() == (1, 1, 3, 1, 1)  # the province hears of the sentinel, nothing else moved

    # A restarted service with a fresh consumer group reads the whole topic again from the start.
    notification.service.stop()
    await notification.start(NOTIFICATION_GROUP_ID=f"notification-{notification.unique}-again")
    await notification.publish(samples.registered(worker("31", email="sentinel2@example.org")))
    await eventually(lambda: notification.mail.to("sentinel2@example.org"), what="the second sentinel")
    assert counts() == (1, 1, 4, 1, 1)
    assert sorted(d["attempts"] for d in await notification.ledger()) == [0] + [1] * 10  # each sent once
    assert len(await _failed(notification)) == 1
    await notification.assert_no_nik_anywhere()


async def test_a_failing_webhook_is_retried_then_reported_while_email_keeps_flowing(
    notification: Notification,
) -> None:
    await notification.start()
    notification.web.failing.add("/broken")
    await notification.api(
        "POST",
        "/partners",
        {"partner_id": "bogor-hr", "webhook_url": notification.web.url("/broken"), "secret": PARTNER_SECRET},
    )
    await notification.publish(
        samples.rejected(),
        *(samples.registered(worker(str(n), email=f"w{n}@example.org")) for n in range(40, 45)),
    )

    await eventually(lambda: len(notification.mail.messages) == 5, what="the workers' e-mails")
    failed = await eventually(lambda: _failed(notification), what="the final failure")
    [report] = failed
    assert report.data.attempts == 3  # NOTIFICATION_MAX_ATTEMPTS
    assert report.data.error == "HTTP 500"
    assert report.data.recipient_id == "bogor-hr"
    assert len(notification.web.to("/broken")) == 3
    keys = {r.headers["idempotency-key"] for r in notification.web.to("/broken")}
    assert keys == {report.data.delivery_id}  # every retry carries the same key
    listed = (await notification.api("GET", "/deliveries", status="failed")).json()
    assert [(d["_id"], d["attempts"], d["last_error"]) for d in listed] == [(report.data.delivery_id, 3, "HTTP 500")]


async def _failed_in_ledger(notification: Notification) -> list[dict[str, Any]]:
    response = await notification.api("GET", "/deliveries", status="failed")
    return response.json()  # type: ignore[no-any-return]


async def _failed(notification: Notification) -> list[ev.NotificationFailed]:
    return [e for e in await notification.deliveries() if isinstance(e, ev.NotificationFailed)]


async def test_a_hanging_webhook_does_not_hold_up_email(notification: Notification) -> None:
    await notification.start(
        NOTIFICATION_SEND_TIMEOUT="30", NOTIFICATION_LEASE="60", NOTIFICATION_WEBHOOK_CONCURRENCY="1"
    )
    gate = notification.web.hold("/slow")
    await notification.api(
        "POST",
        "/partners",
        {"partner_id": "bogor-hr", "webhook_url": notification.web.url("/slow"), "secret": PARTNER_SECRET},
    )
    await notification.publish(samples.rejected())
    await eventually(lambda: notification.web.to("/slow"), what="the webhook call to hang")

    await notification.publish(*(samples.registered(worker(str(n), email=f"w{n}@example.org")) for n in range(50, 55)))
    await eventually(lambda: len(notification.mail.messages) == 5, what="e-mails while the webhook hangs")
    assert "/slow" not in notification.web.answered  # still hanging: e-mail did not wait for it

    gate.set()
    await eventually(lambda: _settled(notification, 6), what="the webhook, once released")
    assert len(notification.web.to("/slow")) == 1


async def test_a_crash_after_sending_resends_with_the_same_idempotency_key(
    notification: Notification,
) -> None:
    """The one window the ledger cannot close: the receiver's idempotency key closes it."""
    await notification.start(NOTIFICATION_SEND_TIMEOUT="3", NOTIFICATION_LEASE="5")
    gate = notification.web.hold("/hr")
    await notification.api(
        "POST",
        "/partners",
        {"partner_id": "bogor-hr", "webhook_url": notification.web.url("/hr"), "secret": PARTNER_SECRET},
    )
    await notification.publish(samples.rejected())
    [first] = await eventually(lambda: notification.web.to("/hr"), what="the first call")
    notification.service.kill()  # kill -9 while the partner is processing: the ledger still says pending
    gate.set()
    await eventually(lambda: "/hr" in notification.web.answered, what="the receiver to finish the first call")

    await notification.start()  # the sweeper resumes it once the dead instance's lease has lapsed
    calls = await eventually(
        lambda: len(notification.web.to("/hr")) == 2 and notification.web.to("/hr"), 60, "a resend"
    )
    assert calls[1].headers["idempotency-key"] == first.headers["idempotency-key"]
    assert calls[1].body == first.body
    [entry] = await eventually(lambda: notification.ledger(status="sent"), what="the delivery settled")
    assert entry["attempts"] == 2


async def test_an_unreadable_record_is_dead_lettered_sealed_and_the_rest_still_flows(
    notification: Notification,
) -> None:
    await notification.start()
    garbage = b'{"type": "id.lindungi.participant.registered", "nik": "3271014506900001"}'
    await publish(notification.bootstrap, notification.outcomes, [(b"k", garbage, {})])
    await notification.publish(samples.registered(worker("60", email="after@example.org")))
    await eventually(lambda: notification.mail.to("after@example.org"), what="the next event's e-mail")
    [letter] = [
        ev.DeadLetterRecorded.model_validate_json(v)
        for v in await read_topic(notification.bootstrap, notification.dead_letters)
    ]
    assert letter.data.service == "notification"
    assert letter.data.source_topic == notification.outcomes
    assert b"3271014506900001" not in letter.model_dump_json().encode()
    await notification.assert_no_nik_anywhere()
