"""Budget alerts, pure: thresholds crossed once per allocation version, holds told, the digest of holds waiting."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notification.domain.budget import (
    BudgetState,
    HeldRequest,
    holds_digest_message,
    reached,
    reserved_percent,
    threshold_messages,
    walk,
)
from services.notification.domain.messages import Audience, Kind, PartnerWebhook
from services.notification.domain.outcomes import messages_for_outcome, worker_messages
from services.notification.templates import Renderer
from shared import events as ev
from shared.privacy import NIK_PATTERN
from shared.regions import load_regions
from tests.unit.notification import budget_samples as b
from tests.unit.notification import samples

REGIONS = load_regions()
THRESHOLDS = (80, 100)
BUDGET_KINDS = frozenset({Kind.BUDGET_THRESHOLD, Kind.BUDGET_HOLD, Kind.BUDGET_HOLDS_DIGEST})


def finance(scope: str = "32.71", **changes: object) -> samples.Subscription:
    fields: dict[str, object] = {"kinds": BUDGET_KINDS, "name": f"BPKAD {scope}"}
    fields.update(changes)
    return samples.subscription(scope, **fields)


def crossings(*positions: ev.BudgetPosition, state: BudgetState | None = None) -> list[tuple[int, list[int]]]:
    _, found = walk(state, positions, THRESHOLDS)
    return [(p.sequence, crossed) for p, crossed in found]


# --- thresholds ------------------------------------------------------------------------------------------


def test_thresholds_are_reached_in_exact_rupiah() -> None:
    assert not reached(b.position(1, 799_999), 80)
    assert reached(b.position(1, 800_000), 80)
    assert not reached(b.position(1, 999_999), 100)
    assert reached(b.position(1, 1_000_000), 100)
    assert reserved_percent(b.position(1, 799_999)) == 79.9  # rounded down: never reads as 80%
    assert not reached(b.position(1, 0, allocation=None), 80)  # nothing declared yet: the holds tell
    assert not reached(b.position(1, 0, allocation=0), 100)


def test_79_then_80_then_100_percent_alerts_at_each_crossing() -> None:
    assert crossings(b.position(1, 790_000), b.position(2, 800_000), b.position(3, 1_000_000)) == [
        (2, [80]),
        (3, [100]),
    ]


def test_a_jump_past_both_thresholds_is_one_crossing_naming_both() -> None:
    assert crossings(b.position(1, 500_000), b.position(2, 1_000_000)) == [(2, [80, 100])]


def test_a_redelivered_or_older_position_never_alerts_twice() -> None:
    state, _ = walk(None, [b.position(1, 790_000), b.position(2, 850_000)], THRESHOLDS)
    assert state is not None
    assert crossings(b.position(2, 850_000), b.position(1, 790_000), state=state) == []
    # Positions arriving out of order are taken in `sequence` order: the crossing is still seen once.
    assert crossings(b.position(2, 850_000), b.position(1, 790_000)) == [(2, [80])]


def test_a_dip_and_a_second_crossing_under_the_same_allocation_announce_nothing_new() -> None:
    positions = [b.position(1, 850_000), b.position(2, 700_000), b.position(3, 820_000)]
    assert crossings(*positions) == [(1, [80])]


def test_an_upward_revision_re_arms_a_threshold_crossed_before() -> None:
    positions = [
        b.position(1, 850_000),  # 85% of version 1: announced
        b.position(2, 850_000, allocation=1_200_000, version=2),  # 70.8% of version 2: re-armed
        b.position(3, 970_000, allocation=1_200_000, version=2),  # 80.8%: announced again, under version 2
    ]
    assert crossings(*positions) == [(1, [80]), (3, [80])]


def test_an_upward_revision_that_stays_above_the_threshold_is_no_crossing() -> None:
    assert crossings(b.position(1, 850_000), b.position(2, 850_000, allocation=1_050_000, version=2)) == [(1, [80])]


def test_a_downward_revision_below_the_reservations_announces_the_full_budget() -> None:
    positions = [
        b.position(1, 850_000),
        b.position(2, 850_000, allocation=800_000, version=2),  # reserved exceeds the revised allocation
    ]
    assert crossings(*positions) == [(1, [80]), (2, [100])]
    position, crossed = walk(None, positions, THRESHOLDS)[1][-1]
    [message] = threshold_messages(position, crossed, [finance()], REGIONS)
    subject, text = Renderer().text(message.template or "", "id", dict(message.facts))
    assert subject == "Anggaran iuran APBD Kota Bogor TA 2027 sudah 100% dicadangkan"
    assert "melebihi alokasi sebesar Rp50.000" in text
    assert "yang sudah diterima tetap berlaku" in text


@given(
    st.lists(
        st.tuples(st.integers(0, 1_300_000), st.sampled_from([(1, 1_000_000), (2, 1_200_000), (3, 900_000)])),
        min_size=1,
        max_size=30,
    )
)
def test_each_threshold_is_announced_at_most_once_per_allocation_version(
    steps: list[tuple[int, tuple[int, int]]],
) -> None:
    # Versions only grow with the sequence, as registration numbers them.
    ordered = sorted(steps, key=lambda s: s[1][0])
    positions = [
        b.position(n, reserved, allocation, version)
        for n, (reserved, (version, allocation)) in enumerate(ordered, start=1)
    ]
    announced = [(p.allocation_version, t) for p, crossed in walk(None, positions, THRESHOLDS)[1] for t in crossed]
    assert len(announced) == len(set(announced))
    for p, crossed in walk(None, positions, THRESHOLDS)[1]:
        assert all(reached(p, t) for t in crossed)


@given(st.lists(st.integers(0, 1_300_000), min_size=1, max_size=20), st.integers(0, 20))
def test_how_positions_fall_into_batches_changes_no_crossing(reserved: list[int], cut: int) -> None:
    positions = [b.position(n, amount) for n, amount in enumerate(reserved, start=1)]
    _, at_once = walk(None, positions, THRESHOLDS)
    state, first = walk(None, positions[:cut], THRESHOLDS)
    _, then = walk(state, positions[cut:], THRESHOLDS)
    assert first + then == at_once


def test_the_budgets_region_and_the_regions_above_it_hear_and_nobody_else() -> None:
    kecamatan = b.key("32.71.01", ev.BudgetSource.APBDES)
    subs = [finance("32.71"), finance("32"), finance("ID"), finance("32.73"), finance("32.71.02")]
    [(position, crossed)] = walk(None, [b.position(1, 900_000, budget=kecamatan)], THRESHOLDS)[1]
    messages = threshold_messages(position, crossed, subs, REGIONS)
    assert sorted(m.recipient_id or "" for m in messages) == ["sub-32", "sub-32.71", "sub-ID"]
    assert {m.source_event_id for m in messages} == {"budget-threshold:32.71.01|2027|APBDES:v1:80"}
    assert all(m.kind is Kind.BUDGET_THRESHOLD for m in messages)


def test_a_subscriber_without_budget_kinds_hears_no_budget_news() -> None:
    plain = samples.subscription("32.71", kinds=frozenset({Kind.PARTICIPANT_REGISTERED}))
    [(position, crossed)] = walk(None, [b.position(1, 900_000)], THRESHOLDS)[1]
    assert threshold_messages(position, crossed, [plain], REGIONS) == []


@pytest.mark.parametrize("language", ["id", "en"])
def test_the_threshold_alert_says_how_much_is_reserved_and_left(language: str) -> None:
    [(position, crossed)] = walk(None, [b.position(1, 806_400, workers=4)], THRESHOLDS)[1]
    [message] = threshold_messages(position, crossed, [finance(language=language)], REGIONS)
    subject, text = Renderer().text(message.template or "", language, dict(message.facts))
    if language == "id":
        assert subject == "Anggaran iuran APBD Kota Bogor TA 2027 sudah 80% dicadangkan"
        assert "Dicadangkan: Rp806.400 (80,6%) untuk 4 pekerja." in text
        assert "Sisa: Rp193.600." in text
        assert "Perda Kota Bogor 12/2026" in text
    else:
        assert subject == "Contribution budget: 80% of the APBD of Kota Bogor, fiscal year 2027 reserved"
        assert "Reserved: Rp806,400 (80.6%) for 4 workers." in text
        assert "Remaining: Rp193,600." in text


# --- holds -----------------------------------------------------------------------------------------------


def test_the_partner_is_told_of_a_hold_like_a_rejection_and_the_worker_hears_nothing() -> None:
    event = b.held()
    webhook = PartnerWebhook("bogor-hr", "https://hr.example/hook")
    messages = messages_for_outcome(event, [finance()], {"bogor-hr": webhook}, REGIONS)
    [partner] = [m for m in messages if m.audience is Audience.PARTNER]
    assert partner.kind is Kind.REQUEST_HELD
    assert partner.address == "https://hr.example/hook"
    assert partner.template is None  # data for the partner's system, as a rejection is
    assert partner.facts["nik_masked"] == samples.NIK_MASKED
    assert partner.facts["budget"]["key"] == "32.71|2027|APBD"
    assert partner.facts["required"] == 201_600
    assert [r["code"] for r in partner.facts["reasons"]] == ["BUDGET_EXHAUSTED"]
    assert partner.facts["reasons"][0]["message_en"].startswith("The region's contribution budget")
    assert not [m for m in messages if m.audience is Audience.WORKER]
    assert worker_messages(event, REGIONS) == []


def test_a_hold_for_a_partner_without_a_webhook_is_undeliverable_not_dropped() -> None:
    [partner] = [m for m in messages_for_outcome(b.held(), [], {}, REGIONS) if m.audience is Audience.PARTNER]
    assert partner.undeliverable == "partner has no webhook configured"


@pytest.mark.parametrize("language", ["id", "en"])
def test_finance_subscribers_hear_of_holds_and_verdicts_without_any_nik(language: str) -> None:
    sub = finance("32", language=language)
    held = messages_for_outcome(b.held(), [sub], {}, REGIONS)
    refused = messages_for_outcome(
        b.decided(resolution=ev.HoldResolution.REFUSED, note="NIK 3271014506900001"), [sub], {}, REGIONS
    )
    [notice] = [m for m in held if m.audience is Audience.SUBSCRIBER]
    [verdict] = refused
    assert notice.kind is verdict.kind is Kind.BUDGET_HOLD
    assert "nik_masked" not in notice.facts
    renderer = Renderer()
    texts = [renderer.text(m.template or "", language, dict(m.facts)) for m in (notice, verdict)]
    for subject, text in texts:
        assert not NIK_PATTERN.search(subject + text)
    (held_subject, held_text), (verdict_subject, verdict_text) = texts
    assert samples.NIK_MASKED not in held_text  # not even masked for the finance office
    assert "NIK 3271**********01" in verdict_text  # a NIK typed into a checker's note leaves masked
    if language == "id":
        assert held_subject == "Permohonan req-h1 ditahan: APBD Kota Bogor TA 2027 tidak cukup"
        assert "Diperlukan Rp201.600 sampai akhir tahun anggaran; tersedia Rp100.000." in held_text
        assert verdict_subject == "Permohonan ditahan req-h1 ditolak oleh bpkad-kota-bogor"
        assert "HOLD_REFUSED" in verdict_text
    else:
        assert "It needs Rp201,600 to the end of the fiscal year; available Rp100,000." in held_text
        assert verdict_subject == "Held request req-h1 refused by bpkad-kota-bogor"


def test_a_hold_on_a_budget_revised_below_its_reservations_says_by_how_much() -> None:
    [notice] = messages_for_outcome(b.held(available=-50_000), [finance()], {}, REGIONS)[1:]
    _, text = Renderer().text(notice.template or "", "id", dict(notice.facts))
    assert "tersedia Rp0 (alokasi terlampaui Rp50.000)" in text


# --- the digest of holds waiting -------------------------------------------------------------------------


def waiting(n: int, budget: str = "32.71|2027|APBD") -> list[HeldRequest]:
    return [HeldRequest(budget, "bogor-hr", f"req-{i:02}", 201_600, b.START + timedelta(hours=i)) for i in range(n)]


def test_the_holds_digest_lists_each_budget_in_scope_with_its_oldest_holds_first() -> None:
    day = date(2027, 3, 2)
    city = b.position(7, 950_000, holds_waiting=3, holds_waiting_amount=604_800)
    village = b.position(
        3, 0, allocation=None, budget=b.key("32.71.01", ev.BudgetSource.APBDES), holds_waiting=1,
        holds_waiting_amount=201_600,
    )  # fmt: skip
    elsewhere = b.position(2, 10, budget=b.key("32.73"), holds_waiting=5, holds_waiting_amount=1)
    quiet = b.position(9, 10, budget=b.key("32"), holds_waiting=0)
    held = [*reversed(waiting(3)), *waiting(1, "32.71.01|2027|APBDES")]
    message = holds_digest_message(finance("32.71"), day, [city, village, elsewhere, quiet], held, REGIONS)
    assert message is not None
    assert message.source_event_id == "budget-holds:sub-32.71:2027-03-02"
    assert message.kind is Kind.BUDGET_HOLDS_DIGEST
    assert not message.digest  # the digest itself is sent, never held for another digest
    assert message.facts["holds_waiting"] == 4
    assert [e["budget_key"] for e in message.facts["budgets"]] == ["32.71|2027|APBD", "32.71.01|2027|APBDES"]
    assert [r["request_id"] for r in message.facts["budgets"][0]["requests"]] == ["req-00", "req-01", "req-02"]
    subject, text = Renderer().text(message.template or "", "id", dict(message.facts))
    assert subject == "Permohonan ditahan karena anggaran, 2 Maret 2027: 4 menunggu keputusan (Rp806.400)"
    assert "APBD Kota Bogor TA 2027: 3 permohonan menunggu keputusan, Rp604.800." in text
    assert "Alokasi belum ditetapkan." in text
    assert "- req-00 dari bogor-hr: Rp201.600, ditahan sejak 1 Maret 2027" in text
    assert "Kota Bandung" not in text


def test_the_holds_digest_counts_what_it_does_not_list_and_skips_quiet_scopes() -> None:
    day = date(2027, 3, 2)
    busy = b.position(7, 950_000, holds_waiting=25, holds_waiting_amount=25 * 201_600)
    message = holds_digest_message(finance("32.71", language="en"), day, [busy], waiting(22), REGIONS)
    assert message is not None
    [entry] = message.facts["budgets"]
    assert (len(entry["requests"]), entry["unlisted"]) == (20, 5)
    _, text = Renderer().text(message.template or "", "en", dict(message.facts))
    assert "- and 5 more" in text
    assert holds_digest_message(finance("33"), day, [busy], [], REGIONS) is None
    plain = samples.subscription("32.71", kinds=frozenset({Kind.BUDGET_THRESHOLD}))
    assert holds_digest_message(plain, day, [busy], [], REGIONS) is None
