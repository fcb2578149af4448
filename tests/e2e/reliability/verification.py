"""Verification: what the system holds and published, compared with what the inputs must lead to."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from typing import Any, Literal

import httpx
from pymongo import AsyncMongoClient

from services.registration.budgets import budget_key, newest_ledgers
from services.registration.domain.ledger import Ledger
from shared import events as ev
from shared.topics import (
    ENROLLMENT_REQUESTS,
    REGION_AGGREGATES,
)
from tests.e2e.reliability.figures import Figures, differences, expected_figures, observed_figures
from tests.e2e.reliability.fleet import Fleet
from tests.e2e.reliability.plan import KIND_OF, PARTNER_SECRETS, PARTNERS, SUBSCRIBERS, UNKNOWN_PARTNER, under
from tests.e2e.reliability.probes import get_json, read_topic
from tests.e2e.reliability.stack import MailSink, Receipt, WebReceiver
from tests.e2e.reliability.verdict import Verdict
from tests.e2e.reliability.workload import Workload


def verify_outcomes(work: Workload, records: list[Any], verdict: Verdict) -> dict[str, Any]:
    """One outcome event id per request, of the expected kind and reasons. Returns each request's outcome."""
    by_key: dict[str, dict[str, Any]] = defaultdict(dict)
    for record in records:
        event = ev.outcome_adapter.validate_json(record.value)
        by_key[f"{event.data.partner_id}:{event.data.request_id}"][event.id] = event
    expected = work.expectations
    verdict.count("lost", "requests without an outcome", sorted(expected.keys() - by_key.keys()))
    verdict.count(
        "doubled",
        "requests with more than one outcome event id",
        [f"{k}: {sorted(ids)}" for k, ids in by_key.items() if len(ids) > 1],
    )
    verdict.count("mismatches", "outcomes for requests never sent", sorted(by_key.keys() - expected.keys()))
    wrong: list[str] = []
    for key, want in expected.items():
        for event in by_key.get(key, {}).values():
            kind = event.type.rsplit(".", 1)[1]
            if kind != want.outcome:
                wrong.append(f"{key}: {kind}, expected {want.outcome} {sorted(want.codes)}")
            elif kind == "rejected":
                codes = frozenset(r.code for r in event.data.reasons)
                if codes != want.codes or event.data.region_code != want.region:
                    wrong.append(f"{key}: {sorted(codes)} in {event.data.region_code}, expected "
                                 f"{sorted(want.codes)} in {want.region}")  # fmt: skip
    verdict.count("mismatches", "outcomes of the wrong kind or with the wrong reasons", wrong)
    copies = len(records) - sum(len(ids) for ids in by_key.values())
    verdict.checks.append(
        f"outcome topic: {len(records)} records, {len(by_key)} requests answered of {len(expected)} sent; "
        f"{copies} re-published copies carrying their original event id (allowed, consumers ignore them)"
    )
    return {key: next(iter(ids.values())) for key, ids in by_key.items()}


def verify_partner_topics(outcomes: dict[str, Any], copies: dict[str, list[Any]], verdict: Verdict) -> None:
    """Each registered partner's own outcome topic (production ACL profile) holds all its outcomes and nobody
    else's; a source registration does not know gets no topic (in production none exists for it)."""
    for topic, records in copies.items():
        partner = topic.removeprefix("lindungi.partner.").removesuffix(".outcomes.v1")
        events = [ev.outcome_adapter.validate_json(r.value) for r in records]
        foreign = [f"{topic}: {e.data.partner_id}:{e.data.request_id}" for e in events if e.data.partner_id != partner]
        verdict.count("mismatches", "another partner's outcome on a partner's topic", foreign)
        verdict.checks.append(f"{topic}: {len(events)} records, {len(foreign)} of another partner")
    if UNKNOWN_PARTNER in {t.removeprefix("lindungi.partner.").removesuffix(".outcomes.v1") for t in copies}:
        verdict.count("mismatches", "a topic for a partner registration does not know", [UNKNOWN_PARTNER])
    for partner in (p["partner_id"] for p in PARTNERS):
        topic = f"lindungi.partner.{partner}.outcomes.v1"
        mine = {e.id for k, e in outcomes.items() if k.startswith(partner + ":")}
        held = {ev.outcome_adapter.validate_json(r.value).id for r in copies.get(topic, [])}
        verdict.count("lost", "outcomes missing from the partner's own topic", sorted(mine - held))


async def _history_of(db: Any, pid: str) -> list[str]:
    """A participation's history entries and the request log's record of them: for a finding's report."""
    entries = []
    async for doc in db["history"].find({"participant_id": pid}):
        logged = await db["requests"].find_one({"_id": doc["_id"]})
        recorded = json.loads(logged["participant"]) if logged and logged.get("participant") else {}
        entries.append(
            f"{doc['_id']} v{doc['version']} {doc['action']} decided {doc['decided_at']}, logged "
            f"{logged.get('recorded_at') if logged else None} v{recorded.get('version')}"
        )
    return sorted(entries)


async def verify_registration(
    work: Workload,
    outcomes: dict[str, Any],
    mongo: AsyncMongoClient[dict[str, Any]],
    bootstrap: str,
    verdict: Verdict,
) -> list[str]:
    """Every valid request is a participant exactly once, in the expected state. Returns the raw documents
    as text for the scan at rest."""
    pid_of: dict[tuple[str, str], str] = {}
    for key, want in work.expectations.items():
        event = outcomes.get(key)
        if want.outcome == "registered" and isinstance(event, ev.ParticipantRegistered) and want.participation:
            pid_of[want.participation] = event.data.participant.participant_id
    db = mongo["lindungi_registration"]
    documents = [doc async for doc in db["participants"].find({})]
    stored = {doc["_id"]: doc for doc in documents}
    expected_ids = set(pid_of.values())
    verdict.count("lost", "valid requests that are no participant", sorted(expected_ids - stored.keys()))
    verdict.count("doubled", "participants no valid request asked for", sorted(stored.keys() - expected_ids))
    published: dict[str, list[str]] = defaultdict(list)  # what the outcome topic says happened to each
    for key, event in sorted(outcomes.items(), key=lambda item: item[1].time):
        participant = getattr(event.data, "participant", None)
        if participant is not None:
            published[participant.participant_id].append(f"{key} v{event.data.version} {event.type.rsplit('.', 1)[1]}")
    wrong_keys = [
        (pkey, pid)
        for pkey, pid in pid_of.items()
        if pid in stored and (stored[pid].get("status") == "ACTIVE") != work.participations[pkey].active
    ]
    intake: dict[bytes, list[str]] = defaultdict(list)
    if wrong_keys:  # where the participant's requests sit on the intake topic, to find the batches in the logs
        for r in await read_topic(bootstrap, ENROLLMENT_REQUESTS.name):
            intake[r.key].append(f"{r.partition}:{r.offset} {json.loads(r.value)['data']['request_id']}")
    wrong = [
        f"{pid}: stored v{stored[pid].get('version')} {stored[pid].get('status')}, outcomes: {published[pid]}, "
        f"history: {await _history_of(db, pid)}, intake: {intake[pkey[0].encode()]}"
        for pkey, pid in wrong_keys
    ]
    verdict.count("mismatches", "participants in the wrong state", wrong)
    history = await db["history"].count_documents({})
    log_entries = await db["requests"].count_documents({})
    if history != work.accepted:
        kind: Literal["lost", "doubled"] = "lost" if history < work.accepted else "doubled"
        verdict.count(kind, "history entries", [f"{history} entries for {work.accepted} accepted requests"])
    if log_entries != len(work.expectations):
        kind = "lost" if log_entries < len(work.expectations) else "doubled"
        verdict.count(kind, "request log entries", [f"{log_entries} for {len(work.expectations)} requests"])
    await verify_budgets(outcomes, db, verdict)
    active = sum(doc.get("status") == "ACTIVE" for doc in documents)
    verdict.checks.append(
        f"registration: {len(stored)} participants ({active} active) for {len(work.participations)} valid "
        f"enrollments ({sum(p.active for p in work.participations.values())} active at the end); "
        f"{history} history entries, {log_entries} request-log entries"
    )
    return [json.dumps(doc, default=str) for doc in documents]


async def verify_budgets(outcomes: dict[str, Any], db: Any, verdict: Verdict) -> None:
    """Each APBD/APBDes budget's ledger (versions inserted one after the other, no transaction) counted every
    decided request exactly once through the crashes: its reserved Rupiah, workers and months equal the sum of the
    charges the outcomes published (one outcome per request), and no entry is left pending (docs/budgets.md)."""
    charged: dict[str, Counter[str]] = defaultdict(Counter)
    for event in outcomes.values():
        charge = getattr(event.data, "budget", None)
        if charge is None:
            continue
        key = f"{charge.region_code}|{charge.fiscal_year}|{charge.funding_source.value}"
        charged[key].update({"reserved": charge.amount, "workers": charge.workers})
        charged[key].update({f"month {m}": v for m, v in charge.by_month.items()})
    ledgers = await newest_ledgers(db)
    wrong = []
    for key in sorted(ledgers.keys() | charged.keys()):
        ledger = ledgers.get(key) or Ledger(budget_key(key))
        counted = Counter({"reserved": ledger.reserved, "workers": ledger.workers})
        counted.update({f"month {m}": v for m, v in ledger.by_month.items()})
        want = charged.get(key, Counter())
        differ = {f for f in counted.keys() | want.keys() if counted[f] != want[f]}
        pending = len(ledger.pending)
        if differ or pending:
            shown = ", ".join(f"{f}: ledger {counted[f]:,}, outcomes {want[f]:,}" for f in sorted(differ))
            wrong.append(f"{key}: {shown}; {pending} pending")
    verdict.count("mismatches", "budget ledgers against the charges the outcomes published", wrong)
    verdict.checks.append(
        f"budgets: {len(ledgers)} ledgers, {sum(c['reserved'] for c in charged.values()):,} Rupiah and "
        f"{sum(c['workers'] for c in charged.values())} workers charged by the outcomes; ledgers agree: {not wrong}"
    )


# --- Verification: reporting --------------------------------------------------------------------------------


async def verify_reporting(
    work: Workload, bootstrap: str, fleet: Fleet, verdict: Verdict, within: float = 90
) -> list[str]:
    """Every region's latest snapshot on the compacted topic and every figure each reporting instance
    serves equal the independent computation. Returns the API's answers for the NIK scan."""
    want = expected_figures(work)

    async def snapshots() -> tuple[dict[str, Figures], list[str]]:
        latest: dict[str, Any] = {}
        for record in await read_topic(bootstrap, REGION_AGGREGATES.name):
            latest[record.key.decode()] = json.loads(record.value)["data"]
        got = {code: observed_figures(data) for code, data in latest.items()}
        return got, differences(got, want)

    # Snapshots are coalesced and published once a second: give the last round time to land.
    deadline = time.monotonic() + within
    got, diff = await snapshots()
    while diff and time.monotonic() < deadline:
        await asyncio.sleep(2)
        got, diff = await snapshots()
    verdict.count("mismatches", "regions whose published snapshot differs from the inputs", diff)
    verdict.checks.append(f"aggregates topic: {len(got)} regions' latest snapshots, {len(diff)} differ")

    texts: list[str] = []
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient() as client:
        for name in fleet.of("reporting"):
            service = fleet.instances[name]
            listed, text = await get_json(client, f"{service.url}/regions")
            texts.append(text)
            codes = sorted({r["region_code"] for r in listed["regions"]} | want.keys())

            async def one(code: str, base: str = service.url) -> tuple[str, Any, str]:
                async with gate:
                    response = await client.get(f"{base}/regions/{code}", timeout=30)
                    return code, response.json() if response.status_code == 200 else {}, response.text

            answers = await asyncio.gather(*(one(code) for code in codes))
            texts += [text for _, _, text in answers]
            served = {code: observed_figures(body) for code, body, _ in answers if body}
            diff = differences(served, want)
            verdict.count("mismatches", f"regions {name} serves differently from the inputs", diff)
            verdict.checks.append(f"reporting API of {name}: {len(served)} regions, {len(diff)} differ")
            for path in ("/rankings?scope=national", "/rankings?scope=32", "/regions.csv"):
                texts.append((await client.get(f"{service.url}{path}", timeout=30)).text)
    return texts


# --- Verification: notification -----------------------------------------------------------------------------

Intent = tuple[str, str, str, str]  # (source event id, audience, recipient, channel)


def expected_intents(work: Workload, outcomes: dict[str, Any]) -> dict[Intent, str]:
    """Who must hear about each outcome, from the inputs and this run's subscriptions: intent -> the status
    the ledger must end with (a partner without a webhook cannot be told: `failed`, visibly)."""
    intents: dict[Intent, str] = {}
    for key, want in work.expectations.items():
        event = outcomes.get(key)
        if event is None:
            continue
        kind = KIND_OF[want.outcome]
        if want.outcome == "rejected":
            partner = key.split(":", 1)[0]
            intents[(event.id, "partner", partner, "WEBHOOK")] = "sent" if partner in PARTNER_SECRETS else "failed"
            scopes: tuple[str, ...] = (want.region,) if want.region else ()
        else:
            email, phone = want.contact
            if email:
                intents[(event.id, "worker", email, "EMAIL")] = "sent"
            if phone:
                intents[(event.id, "worker", phone, "SMS")] = "sent"
            scopes = want.scopes
        for s in SUBSCRIBERS:
            if kind in s.kinds and any(under(code, s.scope) for code in scopes):
                intents[(event.id, "subscriber", s.subscription_id, s.channel.value)] = "sent"
    return intents


NO_WEBHOOK = "partner has no webhook configured"  # notification's reason for an undeliverable partner intent


def recipient_class(intent: Intent) -> tuple[str, bool]:
    """Who an intent is for, and whether that recipient can be reached by the test's design."""
    _, audience, recipient, channel = intent
    if audience == "partner":
        if recipient in PARTNER_SECRETS:
            return "partner with a webhook", True
        if recipient == UNKNOWN_PARTNER:
            return "partner registration does not know (no webhook)", False
        return "partner without a webhook (reads its own outcome topic)", False
    return f"{audience} ({channel.lower()})", True


def outcomes_by_recipient(ledger: dict[Intent, list[dict[str, Any]]], verdict: Verdict) -> None:
    """The ledger's final statuses per class of recipient: every `failed` must be to a recipient that cannot
    be reached by design (a partner without a webhook, with notification's reason for it); one failed
    delivery to a healthy recipient makes the run fail."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    healthy_failed: list[str] = []
    other_reason: list[str] = []
    for intent, docs in ledger.items():
        kind, healthy = recipient_class(intent)
        status = docs[0]["status"]
        table[kind][status] += 1
        if status == "failed" and healthy:
            healthy_failed.append(f"{intent}: after {docs[0]['attempts']} attempts ({docs[0].get('last_error')})")
        elif status == "failed" and docs[0].get("last_error") != NO_WEBHOOK:
            other_reason.append(f"{intent}: {docs[0].get('last_error')}")
    verdict.count("lost", "notifications to a healthy recipient that failed", healthy_failed)
    verdict.count("mismatches", "notifications failed by design for another reason", other_reason)
    verdict.recipients = {kind: dict(sorted(counts.items())) for kind, counts in sorted(table.items())}
    verdict.checks.append(
        "notification outcomes by recipient: "
        + "; ".join(f"{kind}: {dict(counts)}" for kind, counts in verdict.recipients.items())
        + f"; {len(healthy_failed)} failed to a healthy recipient"
    )


def _intent_of(doc: dict[str, Any]) -> Intent:
    recipient = doc["address"] if doc["audience"] == "worker" else doc["recipient_id"]
    return (doc["source_event_id"], doc["audience"], str(recipient), doc["channel"])


def _address_of(doc: dict[str, Any]) -> str:
    """Where a delivery must arrive, as the receivers record it."""
    if doc["channel"] == "WEBHOOK":
        return httpx.URL(doc["address"]).path
    return str(doc["address"])


async def verify_notification(  # noqa: PLR0913, PLR0917 - the places a notification shows up
    work: Workload,
    outcomes: dict[str, Any],
    mongo: AsyncMongoClient[dict[str, Any]],
    mail: MailSink,
    web: WebReceiver,
    reports: list[Any],
    verdict: Verdict,
) -> list[str]:
    """Every intent once in the ledger, every one delivered and received once (by idempotency key), every
    settled delivery reported. Returns the ledger and what the receivers got, for the NIK scan."""
    want = expected_intents(work, outcomes)
    documents = [doc async for doc in mongo["lindungi_notification"]["deliveries"].find({})]
    ledger: dict[Intent, list[dict[str, Any]]] = defaultdict(list)
    for doc in documents:
        ledger[_intent_of(doc)].append(doc)
    verdict.count("lost", "notification intents missing from the ledger", [str(i) for i in want if i not in ledger])
    verdict.count(
        "doubled",
        "notification intents in the ledger more than once",
        [str(i) for i, d in ledger.items() if len(d) > 1],
    )
    verdict.count("mismatches", "ledger entries nobody should get", [str(i) for i in ledger if i not in want])
    unsettled = [
        f"{i}: {docs[0]['status']} after {docs[0]['attempts']} attempts ({docs[0].get('last_error')})"
        for i, docs in ledger.items()
        if i in want and docs[0]["status"] != want[i]
    ]
    verdict.count("lost", "notifications not delivered", unsettled)
    outcomes_by_recipient(ledger, verdict)

    receipts = [*mail.receipts, *web.receipts]
    received: dict[str, list[Receipt]] = defaultdict(list)
    for receipt in receipts:
        received[receipt.key].append(receipt)
    sent = {doc["_id"]: doc for doc in documents if doc["status"] == "sent"}
    verdict.count("lost", "sent notifications the recipient never got", sorted(sent.keys() - received.keys()))
    verdict.count(
        "mismatches", "received notifications the ledger does not know", sorted(received.keys() - sent.keys())
    )
    misdirected = [
        f"{key}: {r.channel.value} to {r.recipient}"
        for key, got in received.items()
        if key in sent
        for r in got
        if (r.channel.value, r.recipient) != (sent[key]["channel"], _address_of(sent[key]))
    ]
    verdict.count("mismatches", "notifications received by the wrong recipient or channel", misdirected)

    reported = {e.data.delivery_id for e in reports}
    settled = {doc["_id"] for doc in documents if doc["status"] in {"sent", "failed"}}
    verdict.count("lost", "settled deliveries never reported on the deliveries topic", sorted(settled - reported))
    resent = len(receipts) - len(received)
    by_channel = Counter(r.channel.value for r in receipts)
    verdict.checks.append(
        f"notification: {len(want)} intents expected, {len(documents)} in the ledger "
        f"({Counter(d['status'] for d in documents)}); {len(receipts)} receipts {dict(by_channel)} for "
        f"{len(received)} idempotency keys: {resent} resent after a crash, deduplicated by key"
    )
    return [json.dumps(doc, default=str) for doc in documents] + [r.text for r in receipts]
