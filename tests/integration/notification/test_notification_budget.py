"""Budget alerts end to end: the notification service as a process against the real Kafka broker and MongoDB
server, a real SMTP server and a real HTTP receiver. Thresholds once per allocation version (a redelivery, an
older position, a restart that lost its place send nothing twice), a held request told to its partner like a
rejection and to the finance office without a NIK, verdicts, and the daily digest of holds waiting.

Registration publishes the budget positions; until its side is wired, the tests publish them themselves.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.notification import signature
from shared import events as ev
from tests.integration.notification.conftest import Notification, body, eventually, read_topic
from tests.support import publish, publish_events
from tests.unit.notification import budget_samples as b
from tests.unit.notification import samples

pytestmark = pytest.mark.integration

PARTNER_SECRET = "bogor-hr-signing-secret-0123456789"  # noqa: S105 - a test receiver's secret
CITY_FINANCE = "bpkad@kotabogor.go.id"
PROVINCE_PLANNING = "bappeda@jabarprov.go.id"


def budget_topic(notification: Notification) -> str:
    return f"budget.{notification.unique}"


async def start(notification: Notification) -> None:
    await notification.start(NOTIFICATION_BUDGET_TOPIC=budget_topic(notification))


async def publish_positions(notification: Notification, *positions: ev.BudgetPosition) -> None:
    events = [(p.key, b.position_changed(p)) for p in positions]
    await publish_events(notification.bootstrap, budget_topic(notification), events)


def finance(scope: str, address: str, kinds: list[str], **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "subscription_id": f"budget-{scope.replace('.', '-')}-{address.partition('@')[0]}",
        "name": f"Keuangan {scope}",
        "stakeholder": "finance",
        "scope": scope,
        "kinds": kinds,
        "channel": "EMAIL",
        "address": address,
    }
    item.update(changes)
    return item


async def subscribe(notification: Notification, *items: dict[str, Any]) -> None:
    for item in items:
        response = await notification.api("POST", "/subscriptions", item)
        assert response.status_code == 201, response.text


def subjects(notification: Notification, address: str) -> list[str]:
    return sorted(m["Subject"] for m in notification.mail.to(address))


async def test_thresholds_are_announced_once_per_allocation_version(notification: Notification) -> None:
    await start(notification)
    kinds = ["budget.threshold"]
    await subscribe(
        notification,
        finance("32.71", CITY_FINANCE, kinds),
        finance("32", PROVINCE_PLANNING, kinds, stakeholder="planning", language="en"),
        finance("33", "bpkad@jatengprov.go.id", kinds),
        finance("32.71", "dprd@kotabogor.go.id", ["participant.registered"]),
    )
    history = [
        b.position(1, 790_000),  # 79%
        b.position(2, 800_000),  # 80%: announced
        b.position(3, 1_000_000),  # 100%: announced
        b.position(4, 1_000_000, allocation=1_500_000, version=2),  # APBD-P upward: 66.7%, 80% re-armed
        b.position(5, 1_200_000, allocation=1_500_000, version=2),  # 80% of version 2: announced
        b.position(6, 1_200_000, allocation=1_100_000, version=3),  # revised down below the reservations: 100%
    ]
    # An allocation recorded is read and passed over (its position is the news); an unreadable record is
    # dead-lettered, and neither holds the budget's alerts back.
    await publish_events(
        notification.bootstrap, budget_topic(notification), [("32.71|2027|APBD", b.allocation_recorded())]
    )
    await publish(notification.bootstrap, budget_topic(notification), [(b"32.71|2027|APBD", b"{not json", {})])
    await publish_positions(notification, *history[:3])
    await publish_positions(notification, history[1], history[0])  # a redelivery, then an older position
    await publish_positions(notification, *history[3:])

    city = [
        "Anggaran iuran APBD Kota Bogor TA 2027 sudah 100% dicadangkan",
        "Anggaran iuran APBD Kota Bogor TA 2027 sudah 100% dicadangkan",
        "Anggaran iuran APBD Kota Bogor TA 2027 sudah 80% dicadangkan",
        "Anggaran iuran APBD Kota Bogor TA 2027 sudah 80% dicadangkan",
    ]
    await eventually(lambda: subjects(notification, CITY_FINANCE) == city, what="four alerts to the city")
    texts = {body(m) for m in notification.mail.to(CITY_FINANCE)}
    assert any("(versi 2, Perda Kota Bogor 12/2026 (versi 2))" in t for t in texts)
    assert any("melebihi alokasi sebesar Rp100.000" in t for t in texts)
    await eventually(lambda: len(notification.mail.to(PROVINCE_PLANNING)) == 4, what="four alerts, province")
    assert notification.mail.to(PROVINCE_PLANNING)[0]["Subject"].startswith("Contribution budget: ")
    assert notification.mail.to("bpkad@jatengprov.go.id") == []
    assert notification.mail.to("dprd@kotabogor.go.id") == []

    # A restart that lost its place: the budgets' state is gone (as after a crash between recording the
    # alerts and saving it) and a fresh consumer group reads the whole topic again. The same crossings make
    # the same deliveries, which the ledger already holds: nothing is sent twice.
    notification.service.stop()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(notification.mongodb_url)
    try:
        await client[notification.database].drop_collection("budget_positions")
    finally:
        await client.close()
    await notification.start(
        NOTIFICATION_BUDGET_TOPIC=budget_topic(notification), NOTIFICATION_GROUP_ID=f"again-{notification.unique}"
    )
    sentinel = [
        b.position(7, 1_200_000, allocation=2_000_000, version=4),
        b.position(8, 1_600_000, allocation=2_000_000, version=4),  # 80% of version 4: a new alert
    ]
    await publish_positions(notification, *sentinel)
    await eventually(lambda: len(notification.mail.to(CITY_FINANCE)) == 5, what="the sentinel alert")
    assert (
        subjects(notification, CITY_FINANCE).count("Anggaran iuran APBD Kota Bogor TA 2027 sudah 80% dicadangkan") == 3
    )
    recorded = await notification.ledger(kind="budget.threshold")
    assert len(recorded) == 10  # five alerts to each of the two subscribers in scope, each once
    # The unreadable record, once per consumer group that read it.
    dead = await eventually(lambda: _dead_letters(notification, 2), what="two dead letters")
    assert len(dead) == 2
    assert {(d.data.source_topic, d.data.service) for d in dead} == {(budget_topic(notification), "notification")}


async def test_a_held_request_is_told_to_its_partner_and_the_finance_office_not_the_worker(
    notification: Notification,
) -> None:
    await start(notification)
    response = await notification.api(
        "POST",
        "/partners",
        {"partner_id": "bogor-hr", "webhook_url": notification.web.url("/bogor-hr"), "secret": PARTNER_SECRET},
    )
    assert response.status_code == 201, response.text
    await subscribe(notification, finance("32", PROVINCE_PLANNING, ["budget.hold"], stakeholder="planning"))

    hold = b.held()
    await notification.publish(hold)
    [call] = await eventually(lambda: notification.web.to("/bogor-hr"), what="the partner's webhook")
    assert signature.verify(
        PARTNER_SECRET, call.headers["x-lindungi-timestamp"], call.headers["x-lindungi-signature"], call.body
    )
    payload = call.json()
    assert payload["type"] == "request.held"
    assert call.headers["x-lindungi-kind"] == "request.held"
    assert (payload["request_id"], payload["nik_masked"]) == ("req-h1", samples.NIK_MASKED)
    assert payload["budget"]["key"] == "32.71|2027|APBD"
    assert (payload["required"], payload["available"]) == (201_600, 100_000)
    assert [r["code"] for r in payload["reasons"]] == ["BUDGET_EXHAUSTED"]
    assert payload["reasons"][0]["message_id"].startswith("Anggaran iuran wilayah tidak cukup")

    [notice] = await eventually(lambda: notification.mail.to(PROVINCE_PLANNING), what="the finance office's mail")
    assert notice["Subject"] == "Permohonan req-h1 ditahan: APBD Kota Bogor TA 2027 tidak cukup"
    assert samples.NIK_MASKED not in body(notice)

    # The verdict: the finance office hears it; then the approved enrollment's own outcome welcomes the worker.
    approved = samples.participant(contact=ev.Contact(email="siti.aminah@example.org", language="id"))
    await notification.publish(
        b.decided(note="anggaran APBD-P sudah disahkan"),
        ev.ParticipantRegistered(
            source="lindungi/registration",
            data=ev.Registered(
                participant=approved,
                request_id="req-h1",
                partner_id="bogor-hr",
                request_event_id="rq-req-h1",
                version=1,
                approved_by="bpkad-kota-bogor",
            ),
        ),
    )
    await eventually(lambda: len(notification.mail.to(PROVINCE_PLANNING)) == 2, what="the verdict")
    verdict = next(m for m in notification.mail.to(PROVINCE_PLANNING) if m is not notice)
    assert verdict["Subject"] == "Permohonan ditahan req-h1 disetujui oleh bpkad-kota-bogor"
    assert "Catatan: anggaran APBD-P sudah disahkan" in body(verdict)
    [welcome] = await eventually(lambda: notification.mail.to("siti.aminah@example.org"), what="the welcome")
    assert welcome["Subject"] == "Anda terdaftar sebagai peserta BPJS Ketenagakerjaan"
    # While it was held the worker heard nothing: the welcome is the only message they got.
    assert len(notification.mail.to("siti.aminah@example.org")) == 1
    assert len(notification.web.to("/bogor-hr")) == 1  # the verdict is not a second answer to the partner
    assert await read_topic(notification.bootstrap, notification.dead_letters) == []
    await notification.assert_no_nik_anywhere()


async def test_the_daily_digest_lists_the_holds_waiting_per_budget_once_a_day(notification: Notification) -> None:
    await start(notification)
    digest = ["budget.holds.digest"]
    await subscribe(
        notification,
        finance("32.71", CITY_FINANCE, digest),
        finance("32", PROVINCE_PLANNING, digest, stakeholder="planning", language="en"),
        finance("33", "bpkad@jatengprov.go.id", digest),
    )
    village = b.key("32.71.01", ev.BudgetSource.APBDES)
    holds = [
        b.held("req-a", time=b.START),
        b.held("req-b", time=b.START + timedelta(hours=1)),
        b.held("req-c", time=b.START + timedelta(hours=2)),
        b.held("req-v", partner_id="desa-mulyaharja", budget=village, time=b.START),
    ]
    await notification.publish(*holds, b.decided("req-b", ev.HoldResolution.REFUSED, time=b.START + timedelta(hours=3)))
    await publish_positions(
        notification,
        b.position(3, 1_000_000, holds_waiting=2, holds_waiting_amount=403_200),
        b.position(1, 0, allocation=None, budget=village, holds_waiting=1, holds_waiting_amount=201_600),
    )
    # The digest waits for its hour (NOTIFICATION_BUDGET_DIGEST_HOUR, WIB); an operator can send it at once.
    flushed = await eventually(lambda: _flush_until_both(notification), what="the positions and holds read")
    assert flushed == 2
    [city] = await eventually(lambda: notification.mail.to(CITY_FINANCE), what="the city's digest")
    assert city["Subject"].startswith("Permohonan ditahan karena anggaran, ")
    assert city["Subject"].endswith(": 3 menunggu keputusan (Rp604.800)")
    text = body(city)
    assert "APBD Kota Bogor TA 2027: 2 permohonan menunggu keputusan, Rp403.200." in text
    assert "- req-a dari bogor-hr: Rp201.600" in text
    assert "- req-c dari bogor-hr: Rp201.600" in text
    assert "req-b" not in text  # refused: no longer waiting
    assert "- req-v dari desa-mulyaharja: Rp201.600" in text
    assert text.index("req-a") < text.index("req-c")  # the longest waiting first
    [province] = await eventually(lambda: notification.mail.to(PROVINCE_PLANNING), what="the province's digest")
    assert "2 requests waiting for a verdict" in body(province)
    assert notification.mail.to("bpkad@jatengprov.go.id") == []

    # Once a day: asking again the same day sends nothing more.
    assert (await notification.api("POST", "/digests/flush")).json() == {"digests": 0}
    assert len(await notification.ledger(kind="budget.holds.digest")) == 2
    await notification.assert_no_nik_anywhere()


async def _flush_until_both(notification: Notification) -> int | None:
    """Flush once the service has read both positions, every hold and the verdict; not before: a digest sent
    from half of them would be the day's digest."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(notification.mongodb_url)
    try:
        db = client[notification.database]
        positions = await db["budget_positions"].count_documents({"holds_waiting": {"$gt": 0}})
        decided = await db["budget_holds"].count_documents({"decided_at": {"$exists": True}})
        held = await db["budget_holds"].count_documents({"held_at": {"$exists": True}})
    finally:
        await client.close()
    if (positions, decided, held) != (2, 1, 4):
        return None
    return int((await notification.api("POST", "/digests/flush")).json()["digests"])


async def _dead_letters(notification: Notification, count: int) -> list[ev.DeadLetterRecorded] | None:
    values = await read_topic(notification.bootstrap, notification.dead_letters)
    letters = [ev.DeadLetterRecorded.model_validate_json(v) for v in values]
    return letters if len(letters) >= count else None
