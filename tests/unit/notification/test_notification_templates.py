"""The templates: every kind in both languages renders, says what the issue asks, and never shows a NIK."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.notification.domain.coverage import RegionProgress, milestone_messages, read_coverage, stagnation_messages
from services.notification.domain.digest import DigestItem, digest_message
from services.notification.domain.messages import Kind, Message, PartnerWebhook
from services.notification.domain.outcomes import messages_for_outcome, worker_messages
from services.notification.templates import Renderer, long_date, rupiah
from shared import events as ev
from shared.privacy import NIK_PATTERN
from shared.regions import load_regions
from tests.unit.notification import samples

REGIONS = load_regions()
RENDERER = Renderer()


def render(message: Message) -> tuple[str, str]:
    rendered = RENDERER.render(message)
    return rendered.subject, rendered.text


def test_the_worker_confirmation_in_indonesian() -> None:
    email = worker_messages(samples.registered(), REGIONS)[0]
    subject, text = render(email)
    assert subject == "Anda terdaftar sebagai peserta BPJS Ketenagakerjaan"
    assert "NIK 3271**********01" in text
    assert "Program: JKK, JKM." in text
    assert "Iuran Rp16.800 per bulan, dibayar oleh APBD Kota Bogor." in text


def test_the_worker_confirmation_in_english_with_several_payers() -> None:
    shares = {ev.Payer.EMPLOYER: 300_000, ev.Payer.WORKER: 100_000, ev.Payer.CENTRAL_GOVERNMENT: 5_000}
    worker = samples.participant(
        segment=ev.Segment.PU,
        category=ev.Category.FORMAL_EMPLOYEE,
        funding_source=ev.FundingSource.EMPLOYER,
        contributions=samples.contributions(shares),
        contact=ev.Contact(email="budi@example.org", language="en"),
    )
    [email] = worker_messages(samples.registered(worker), REGIONS)
    _, text = render(email)
    assert (
        "Contribution Rp405,000 a month, paid by your employer (Rp300,000), you (Rp100,000) "
        "and the central government (Rp5,000)." in text
    )


@pytest.mark.parametrize("kind", ["registered", "updated", "terminated", "reactivated"])
@pytest.mark.parametrize("language", ["id", "en"])
def test_every_worker_kind_renders_in_both_languages(kind: str, language: str) -> None:
    worker = samples.participant(contact=ev.Contact(email="siti@example.org", language=language))
    event = getattr(samples, kind)(worker)
    [email] = worker_messages(event, REGIONS)
    subject, text = render(email)
    assert subject
    assert "3271**********01" in text
    assert "JKK, JKM" in text


@pytest.mark.parametrize("language", ["id", "en"])
def test_stakeholder_milestone_stagnation_digest_and_rejection_texts_render(language: str) -> None:
    sub = samples.subscription("32", language=language)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    participant_event = messages_for_outcome(samples.registered(samples.participant(contact=None)), [sub], {}, REGIONS)
    rejection = [m for m in messages_for_outcome(samples.rejected(), [sub], {}, REGIONS) if m.template]
    snapshot = read_coverage(json.dumps(samples.aggregate(ratio=0.62, target_ratio=0.8)))
    milestone = milestone_messages(snapshot, [50, 75], [sub], REGIONS)
    stalled = RegionProgress("32.01", "Kabupaten Bogor", "regency/city", 0.2, now - timedelta(days=45))
    stagnant = stagnation_messages(stalled, now, timedelta(days=30), [sub], REGIONS)
    item = DigestItem("i1", sub.subscription_id, Kind.PARTICIPANT_REGISTERED, "e1", "a line", now)
    digest = digest_message(sub, now.date(), [item])
    assert digest is not None
    for message in [*participant_event, *rejection, *milestone, *stagnant, digest]:
        subject, text = render(message)
        assert subject
        assert text.strip()
        assert not NIK_PATTERN.search(subject + text)
    assert "75%" in render(milestone[0])[0]
    assert "Kabupaten Bogor" in render(stagnant[0])[1]


def test_a_nik_that_slips_into_the_facts_is_masked_in_every_output() -> None:
    reason = ev.RejectionReason(
        code="X", message_id="NIK 3271014506900001 ganda", message_en="NIK 3271014506900001 twice"
    )
    event = samples.rejected(reasons=[reason])
    sub = samples.subscription("32", channel=ev.DeliveryChannel.WEBHOOK, address="https://dprd.example/hook")
    for message in messages_for_outcome(
        event, [sub], {"bogor-hr": PartnerWebhook("bogor-hr", "https://x.example")}, REGIONS
    ):
        rendered = RENDERER.render(message)
        assert not NIK_PATTERN.search(rendered.subject + rendered.text + (rendered.payload or ""))


def test_a_partner_payload_is_json_with_the_delivery_id_it_is_signed_under() -> None:
    [message] = messages_for_outcome(
        samples.rejected(), [], {"bogor-hr": PartnerWebhook("bogor-hr", "https://x.example")}, REGIONS
    )
    payload = json.loads(RENDERER.render(message).payload or "")
    assert payload["type"] == "request.rejected"
    assert payload["delivery_id"] == message.delivery_id
    assert [r["code"] for r in payload["reasons"]] == ["NIK_CHECKSUM", "PROGRAM_NOT_OFFERED"]


def test_rupiah_and_dates_read_the_local_way() -> None:
    assert rupiah(1_250_000, "id") == "Rp1.250.000"
    assert rupiah(1_250_000, "en") == "Rp1,250,000"
    assert long_date("2026-08-17", "id") == "17 Agustus 2026"
    assert long_date("2026-08-17T10:00:00+07:00", "en") == "17 August 2026"
