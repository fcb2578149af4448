"""Who hears what: the notification rules, pure (no servers)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notification.domain.addresses import mask_email, mask_phone, mask_url, redact
from services.notification.domain.coverage import (
    RegionProgress,
    UnreadableAggregateError,
    milestone_messages,
    newly_crossed,
    read_coverage,
    stagnation_messages,
)
from services.notification.domain.digest import DigestItem, digest_day_due, digest_message
from services.notification.domain.messages import Audience, Kind, Message, PartnerWebhook, delivery_id
from services.notification.domain.outcomes import messages_for_outcome, partner_message, worker_messages
from services.notification.domain.scope import ancestry, escalation_scope, hears, scopes_covering
from shared import events as ev
from shared.privacy import NIK_PATTERN
from shared.regions import load_regions
from tests.unit.notification import samples

REGIONS = load_regions()
subscription = samples.subscription


def audiences(messages: list[Message]) -> list[tuple[str, str, str | None]]:
    return sorted((m.audience.value, m.channel.value, m.recipient_id) for m in messages)


# --- the worker ------------------------------------------------------------------------------------------


def test_a_consenting_worker_hears_on_every_channel_they_gave_in_their_language() -> None:
    messages = messages_for_outcome(samples.registered(), [], {}, REGIONS)
    assert audiences(messages) == [("worker", "EMAIL", None), ("worker", "SMS", None)]
    email = next(m for m in messages if m.channel is ev.DeliveryChannel.EMAIL)
    assert email.address == "siti.aminah@example.org"
    assert email.language == "id"
    assert email.template == "participant.registered"
    assert email.facts["nik_masked"] == samples.NIK_MASKED
    assert email.facts["programs"] == ["JKK", "JKM"]
    assert email.facts["payers"] == [{"payer": "FUNDER", "amount": 16_800}]
    assert email.facts["funder_region_name"] == "Kota Bogor"
    assert email.recipient_display == "s***@example.org"


def test_a_worker_without_consent_hears_nothing() -> None:
    event = samples.registered(samples.participant(contact=None))
    assert worker_messages(event, REGIONS) == []


def test_each_participant_event_has_its_own_kind() -> None:
    kinds = {
        worker_messages(event, REGIONS)[0].kind
        for event in (samples.registered(), samples.updated(), samples.terminated(), samples.reactivated())
    }
    assert kinds == {
        Kind.PARTICIPANT_REGISTERED,
        Kind.PARTICIPANT_UPDATED,
        Kind.PARTICIPANT_TERMINATED,
        Kind.PARTICIPANT_REACTIVATED,
    }


def test_no_message_goes_to_a_deceased_workers_phone_but_stakeholders_still_hear() -> None:
    event = samples.terminated(reason=ev.TerminationReason.DECEASED)
    messages = messages_for_outcome(event, [subscription("32.71")], {}, REGIONS)
    assert audiences(messages) == [("subscriber", "EMAIL", "sub-32.71")]


def test_a_migrated_worker_gets_no_welcome_but_stakeholders_hear_it_was_moved() -> None:
    moved = samples.participant(migrated_from="SIPP 2019", coverage_start=date(2021, 5, 10))
    messages = messages_for_outcome(samples.registered(moved), [subscription("32.71")], {}, REGIONS)
    assert audiences(messages) == [("subscriber", "EMAIL", "sub-32.71")]
    assert messages[0].facts["migrated_from"] == "SIPP 2019"


def test_stakeholders_never_see_the_workers_nik_or_contact() -> None:
    messages = messages_for_outcome(samples.registered(), [subscription("32")], {}, REGIONS)
    facts = next(m for m in messages if m.audience is Audience.SUBSCRIBER).facts
    assert "nik_masked" not in facts
    assert "siti" not in str(facts)
    assert "+62" not in str(facts)


# --- the partner -----------------------------------------------------------------------------------------


def test_a_partner_hears_every_reason_of_a_rejection_by_webhook() -> None:
    webhook = PartnerWebhook("bogor-hr", "https://hr.kotabogor.go.id/lindungi")
    event = samples.rejected()
    [message] = messages_for_outcome(event, [], {"bogor-hr": webhook}, REGIONS)
    assert message.audience is Audience.PARTNER
    assert message.channel is ev.DeliveryChannel.WEBHOOK
    assert message.address == webhook.url
    assert message.template is None  # data for the partner's system, not prose
    assert message.facts["request_id"] == "req-9"
    assert [(r["code"], r["message_id"], r["message_en"]) for r in message.facts["reasons"]] == [
        (r.code, r.message_id, r.message_en) for r in event.data.reasons
    ]


def test_a_nik_quoted_in_a_rejection_message_leaves_masked() -> None:
    reason = ev.RejectionReason(
        code="DUPLICATE", message_id="NIK 3271014506900001 sudah terdaftar", message_en="already registered"
    )
    message = partner_message(samples.rejected(reasons=[reason]), PartnerWebhook("p", "https://p.example"))
    assert not NIK_PATTERN.search(str(message.facts))
    assert message.facts["reasons"][0]["message_id"] == "NIK 3271**********01 sudah terdaftar"


def test_a_partner_without_a_webhook_is_an_undeliverable_notice_not_a_silent_drop() -> None:
    [message] = messages_for_outcome(samples.rejected(partner_id="nobody"), [], {}, REGIONS)
    assert message.undeliverable == "partner has no webhook configured"
    assert message.address is None


# --- stakeholders and scope ------------------------------------------------------------------------------


def test_scope_matching_goes_up_the_hierarchy_and_not_sideways() -> None:
    subs = [subscription(s) for s in ("ID", "32", "32.71", "32.71.01", "31", "32.73", "32.71.02")]
    messages = messages_for_outcome(samples.registered(samples.participant(contact=None)), subs, {}, REGIONS)
    assert {m.recipient_id for m in messages} == {"sub-ID", "sub-32", "sub-32.71", "sub-32.71.01"}


def test_a_subscriber_hears_only_the_kinds_it_asked_for() -> None:
    only_rejections = subscription("32", kinds=frozenset({Kind.REQUEST_REJECTED}))
    assert (
        messages_for_outcome(samples.registered(samples.participant(contact=None)), [only_rejections], {}, REGIONS)
        == []
    )
    messages = messages_for_outcome(samples.rejected(), [only_rejections], {}, REGIONS)
    assert audiences(messages) == [("partner", "WEBHOOK", "bogor-hr"), ("subscriber", "EMAIL", "sub-32")]


def test_after_a_move_both_the_old_and_the_new_region_hear() -> None:
    before = samples.participant(region_code="32.73", kecamatan_code=None, contact=None)
    after = samples.participant(region_code="32.71", kecamatan_code=None, contact=None)
    subs = [subscription("32.71"), subscription("32.73")]
    messages = messages_for_outcome(samples.updated(after, previous=before), subs, {}, REGIONS)
    assert {m.recipient_id for m in messages} == {"sub-32.71", "sub-32.73"}


KECAMATAN = sorted(r.code for r in REGIONS.at_level("kecamatan"))
SCOPES = [
    "ID",
    *sorted(r.code for r in REGIONS.at_level("province")),
    *sorted(r.code for r in REGIONS.at_level("regency/city")),
]


@given(st.sampled_from(KECAMATAN), st.sampled_from(SCOPES + KECAMATAN[:200]))
def test_a_scope_hears_exactly_the_events_inside_it(kecamatan: str, scope: str) -> None:
    inside = scope in {"ID", kecamatan} or kecamatan.startswith(scope + ".")
    assert hears(subscription(scope), Kind.PARTICIPANT_REGISTERED, scopes_covering([kecamatan], REGIONS)) is inside


def test_an_unknown_code_still_reaches_its_province_and_the_nation() -> None:
    assert ancestry("94.71.99", REGIONS)[-2:] == ["94", "ID"]


# --- milestones ------------------------------------------------------------------------------------------


def test_crossing_two_thresholds_at_once_is_one_announcement_naming_both() -> None:
    snapshot = read_coverage(json.dumps(samples.aggregate(ratio=0.45, target_ratio=0.8)))
    assert newly_crossed(snapshot.progress or 0, (25, 50, 75, 100), []) == [25, 50]
    [message] = milestone_messages(snapshot, [25, 50], [subscription("32")], REGIONS)
    assert message.facts["threshold"] == 50
    assert message.facts["also_crossed"] == [25]
    assert message.source_event_id == "milestone:32.71:50"


@given(st.lists(st.floats(min_value=0, max_value=1.5, allow_nan=False), max_size=30))
def test_each_threshold_is_announced_once_at_the_first_snapshot_that_crosses_it(
    progresses: list[float],
) -> None:
    thresholds = (25, 50, 75, 100)
    reached: list[int] = []
    for index, progress in enumerate(progresses):
        new = newly_crossed(progress, thresholds, reached)
        assert not set(new) & set(reached)
        for threshold in new:
            first = next(i for i, p in enumerate(progresses) if p * 100 + 1e-9 >= threshold)
            assert first == index
        reached += new
    best = max(progresses, default=0) * 100
    assert sorted(reached) == [t for t in thresholds if best + 1e-9 >= t]


def test_progress_is_measured_against_the_target_when_there_is_one() -> None:
    with_target = read_coverage(json.dumps(samples.aggregate(ratio=0.4, target_ratio=0.8)))
    without = read_coverage(json.dumps(samples.aggregate(ratio=0.4, target_ratio=None)))
    no_coverage = read_coverage(json.dumps(samples.aggregate(ratio=None)))
    assert with_target.progress == pytest.approx(0.5)
    assert without.progress == pytest.approx(0.4)
    assert no_coverage.progress is None


def test_an_aggregate_with_fields_reporting_added_is_still_read() -> None:
    raw = samples.aggregate()
    raw["data"]["something_new"] = {"x": 1}
    raw["data"]["coverage"]["another"] = 2
    assert read_coverage(json.dumps(raw)).region_code == "32.71"


def test_an_unreadable_aggregate_says_so() -> None:
    with pytest.raises(UnreadableAggregateError):
        read_coverage(b'{"type": "something.else"}')


# --- stagnation ------------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def progress(code: str = "32.01", days: float = 40, value: float = 0.3) -> RegionProgress:
    return RegionProgress(code, "Kabupaten Bogor", "regency/city", value, NOW - timedelta(days=days))


def test_a_stalled_regency_is_escalated_to_its_province_once_per_period() -> None:
    subs = [subscription("32"), subscription("32.01"), subscription("31"), subscription("ID")]
    period = timedelta(days=30)
    [message] = stagnation_messages(progress(days=40), NOW, period, subs, REGIONS)
    assert message.recipient_id == "sub-32"
    assert message.facts["escalated_to_name"] == "Jawa Barat"
    assert message.facts["days_without_progress"] == 40
    later = stagnation_messages(progress(days=40), NOW + timedelta(days=25), period, subs, REGIONS)
    assert later[0].source_event_id != message.source_event_id  # a second period: a second escalation
    same_period = stagnation_messages(progress(days=40), NOW + timedelta(days=5), period, subs, REGIONS)
    assert same_period[0].source_event_id == message.source_event_id  # the ledger keeps it to one


def test_no_escalation_before_a_whole_period_or_once_the_target_is_met() -> None:
    subs = [subscription("32")]
    assert stagnation_messages(progress(days=10), NOW, timedelta(days=30), subs, REGIONS) == []
    assert stagnation_messages(progress(days=90, value=1.0), NOW, timedelta(days=30), subs, REGIONS) == []


def test_a_province_is_escalated_to_the_nation_and_the_nation_to_nobody() -> None:
    assert escalation_scope("32.71.01") == "32"
    assert escalation_scope("32.71") == "32"
    assert escalation_scope("32") == "ID"
    assert escalation_scope("ID") is None


# --- digests ---------------------------------------------------------------------------------------------


def test_a_digest_counts_and_lists_what_was_held_in_order() -> None:
    sub = subscription("32", digest="daily")
    items = [
        DigestItem(f"i{n}", sub.subscription_id, kind, f"e{n}", f"line {n}", NOW + timedelta(minutes=10 - n))
        for n, kind in enumerate([Kind.PARTICIPANT_REGISTERED, Kind.PARTICIPANT_REGISTERED, Kind.REQUEST_REJECTED])
    ]
    message = digest_message(sub, date(2026, 3, 1), items)
    assert message is not None
    assert message.facts["counts"] == {"participant.registered": 2, "request.rejected": 1}
    assert [i["summary"] for i in message.facts["items"]] == ["line 2", "line 1", "line 0"]
    assert message.source_event_id == "digest:sub-32:2026-03-01"
    assert digest_message(sub, date(2026, 3, 1), []) is None


def test_subscribers_asking_for_a_digest_get_their_messages_held() -> None:
    messages = messages_for_outcome(
        samples.registered(samples.participant(contact=None)),
        [subscription("32", digest="daily")],
        {},
        REGIONS,
    )
    assert [m.digest for m in messages] == [True]


def test_the_digest_is_due_after_the_hour_in_jakarta() -> None:
    assert digest_day_due(datetime(2026, 3, 1, 23, 59, tzinfo=UTC), 7) is None  # 06:59 WIB on 2 March
    assert digest_day_due(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 7) == date(2026, 3, 2)  # 07:00 WIB


# --- keys and masks --------------------------------------------------------------------------------------


def test_masks_keep_only_what_identifies_the_channel() -> None:
    assert mask_email("siti.aminah@example.org") == "s***@example.org"
    assert mask_phone("+6281234567890") == "+62********890"
    assert mask_url("https://user:pw@hr.example.id:8443/hook?token=abc") == "https://hr.example.id:8443/hook"
    assert redact("refused <siti@example.org>", ["siti@example.org"]) == "refused <s***@example.org>"


@given(st.text(), st.sampled_from(list(Audience)), st.text(), st.sampled_from(list(ev.DeliveryChannel)))
def test_delivery_ids_are_stable_and_never_look_like_a_nik(
    source: str, audience: Audience, recipient: str, channel: ev.DeliveryChannel
) -> None:
    key = delivery_id(source, audience, recipient, channel)
    assert key == delivery_id(source, audience, recipient, channel)
    assert re.fullmatch(r"[a-z2-7]{32}", key)
    assert not NIK_PATTERN.search(key)


def test_a_worker_delivery_is_keyed_by_address_and_channel() -> None:
    event = samples.registered()
    first = {m.delivery_id for m in worker_messages(event, REGIONS)}
    again = {m.delivery_id for m in worker_messages(event, REGIONS)}
    assert first == again
    assert len(first) == 2
