"""Registration's budget collections: each ledger's versions, a summary of each, and the held requests.

A ledger changes only as a whole, from the version read to the next: the change is the insert of version
`sequence + 1` under the id `<budget>#<sequence>`, and of two instances changing the same version only one
insert succeeds (a unique `_id`: the one write FerretDB v1 and every MongoDB make atomic without
transactions). A conditional replace is not enough: FerretDB v1 reads the document matching the filter, then
writes by `_id` in a separate step, so two replaces conditional on the same `sequence` both succeed and one
change is lost (`tests/integration/registration/test_budget_ledger_store.py` counts them: of 480 swaps that
all said they succeeded, an unpatched FerretDB kept 115). The `budgets` collection keeps a summary of each
ledger, a recent version to start a load from; it lags, so a load follows the versions past it
(`newest_ledgers`). A summary is rewritten only every `SUMMARY_EVERY` versions (a replace cost ~0.75 ms on
FerretDB, one per budget a batch touched), and an instance starts its loads from the newer of the summary and
the newest version it has read or written itself: versions never change once inserted, so alone on a budget
it follows none, and the summary bounds how far it follows when other instances wrote the budget meanwhile.
`budget_declarations` holds the key of each budget with an allocation, the one list every batch reads.

The maps inside a ledger (months, holds, pending entries, allocation versions) are JSON strings, as in the
participants: FerretDB converts every nested field on write, and the ledger is rewritten on every change.

A held request keeps its request event with the NIK sealed, bound to its key: when a second principal approves
or refuses it, registration sends it back to intake (`budgeting.py`) to be decided again in order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReplaceOne

from services.registration.domain.budget import Charge, reserved_now
from services.registration.domain.ledger import Allocation, Entry, Ledger
from services.registration.domain.participation import Forward, ParticipantRecord, Verdict
from shared.events import BudgetKey, BudgetSource, Held, HoldDecidedEvent, HoldResolution, RequestHeld
from shared.mongo import bulk_update, insert_new

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

    from services.registration.domain.participation import Decision
    from shared.crypto import Sealer

Document = dict[str, Any]

# A summary is rewritten once it is this many versions behind (a batch writes two versions of each budget it
# touches). A load that starts from a summary follows at most this many more, all budgets in one read each.
SUMMARY_EVERY = 16


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def charge_document(charge: Charge) -> Document:
    return {
        "budget": charge.budget.key,
        "amount": charge.amount,
        "workers": charge.workers,
        "by_month": dict(charge.by_month),
        "holds": dict(charge.holds),
    }


def budget_key(key: str) -> BudgetKey:
    region, year, source = key.split("|")
    return BudgetKey(region_code=region, fiscal_year=int(year), funding_source=BudgetSource(source))


def charge_from_document(document: Document) -> Charge:
    return Charge(
        budget_key(document["budget"]),
        document["amount"],
        document["workers"],
        document["by_month"],
        document.get("holds", {}),
    )


def _verdict_document(verdict: Verdict) -> Document:
    return {
        "resolution": verdict.resolution.value,
        "decided_by": verdict.decided_by,
        "decision_key": verdict.decision_key,
        "budget": verdict.budget.key,
        "required": verdict.required,
    }


def verdict_from_document(document: Document) -> Verdict:
    return Verdict(
        HoldResolution(document["resolution"]),
        document["decided_by"],
        document["decision_key"],
        budget_key(document["budget"]),
        document["required"],
    )


def budget_fields(decision: Decision) -> Document:
    """What the request log keeps of a decision's budget side, so that a replay settles and forwards the same."""
    fields: Document = {}
    if decision.charge is not None:
        fields["charge"] = _dumps(charge_document(decision.charge))
    if decision.verdict is not None:
        fields["verdict"] = _dumps(_verdict_document(decision.verdict))
    if decision.forward is not None:
        fields["forward"] = _dumps(
            {"held_key": decision.forward.held_key, **_verdict_document(decision.forward.verdict)}
        )
    return fields


def budget_from_fields(document: Document) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if document.get("charge"):
        found["charge"] = charge_from_document(json.loads(document["charge"]))
    if document.get("verdict"):
        found["verdict"] = verdict_from_document(json.loads(document["verdict"]))
    if document.get("forward"):
        forward = json.loads(document["forward"])
        found["forward"] = Forward(forward.pop("held_key"), verdict_from_document(forward))
    return found


def ledger_document(ledger: Ledger) -> Document:
    budget = ledger.budget
    return {
        "_id": budget.key,
        "region_code": budget.region_code,
        "fiscal_year": budget.fiscal_year,
        "funding_source": budget.funding_source.value,
        "sequence": ledger.sequence,
        "declared": bool(ledger.allocations),
        "reserved": ledger.reserved,
        "workers": ledger.workers,
        "by_month": _dumps(ledger.by_month),
        "holds": _dumps(ledger.holds),
        "allocations": _dumps([asdict(a) for a in ledger.allocations]),
        "opened": ledger.opened,
        "pending": _dumps(
            {name: {"charge": charge_document(e.charge), "chain": list(e.chain)} for name, e in ledger.pending.items()}
        ),
    }


def version_id(key: str, sequence: int) -> str:
    """A ledger version's id: zero-padded so that the versions of a budget sort in order."""
    return f"{key}#{sequence:012d}"


async def newest_ledgers(
    db: AsyncDatabase[Document], keys: Iterable[str] | None = None, known: Mapping[str, Ledger] | None = None
) -> dict[str, Ledger]:
    """The ledgers of these budgets (all when None) as their newest versions hold them: the summaries, or a
    version `known` already where it is newer, then the versions after each, one read per step for all of
    them (usually one read finding none). One never written yet is empty (sequence 0)."""
    wanted = None if keys is None else list(dict.fromkeys(keys))
    if wanted == []:
        return {}  # nothing to read: no round trip
    query: Document = {} if wanted is None else {"_id": {"$in": wanted}}
    ledgers = {doc["_id"]: ledger_from_document(doc) async for doc in db["budgets"].find(query)}
    if wanted is not None:
        ledgers = {key: ledgers.get(key) or Ledger(budget_key(key)) for key in wanted}
    for key, ledger in (known or {}).items():
        if key in ledgers and ledger.sequence > ledgers[key].sequence:
            ledgers[key] = ledger
    behind = dict(ledgers)
    while behind:
        ids = {version_id(key, ledger.sequence + 1): key for key, ledger in behind.items()}
        cursor = db["budget_versions"].find({"_id": {"$in": list(ids)}})
        behind = {ids[doc["_id"]]: ledger_from_document(doc) async for doc in cursor}
        ledgers.update(behind)
    return ledgers


def ledger_from_document(document: Document) -> Ledger:
    allocations = tuple(
        Allocation(**{**a, "effective_date": date.fromisoformat(a["effective_date"])})
        for a in json.loads(document["allocations"])
    )
    pending = {
        name: Entry(charge_from_document(e["charge"]), tuple(e["chain"]))
        for name, e in json.loads(document["pending"]).items()
    }
    return Ledger(
        budget=budget_key(document.get("budget") or document["_id"]),
        sequence=document["sequence"],
        allocations=allocations,
        reserved=document["reserved"],
        workers=document["workers"],
        by_month=json.loads(document["by_month"]),
        holds=json.loads(document["holds"]),
        pending=pending,
        opened=document.get("opened", False),
    )


class MongoBudgets:
    """Ledgers and holds in registration's own database."""

    def __init__(self, client: AsyncMongoClient[Document], database: str, sealer: Sealer) -> None:
        self._db: AsyncDatabase[Document] = client[database]
        self._sealer = sealer
        self.ledgers = self._db["budgets"]  # the summary: each ledger's newest version, as far as it is known
        self.versions = self._db["budget_versions"]  # the truth: every version, by `version_id`
        self.holds = self._db["holds"]
        self.participants = self._db["participants"]  # read only: what a new year carries over
        # The keys of the declared budgets, read by every batch: a filter on the summaries' `declared` flag is
        # a scan of every ledger on FerretDB (55 ms a batch at 12,000 participants, most of a small batch's time).
        self.declarations = self._db["budget_declarations"]
        # The newest version of each ledger this instance has read or written: where its loads start. A budget
        # per region, year and source: a few thousand ledgers at most, each without its settled entries.
        self._newest: dict[str, Ledger] = {}
        self._summarised: dict[str, int] = {}  # the version of each summary this instance last wrote

    async def create_indexes(self) -> None:
        await self.holds.create_index([("status", ASCENDING), ("region_code", ASCENDING)])
        # Budgets declared before this collection existed (safe to repeat, by several instances at once).
        await self.declare([doc["_id"] async for doc in self.ledgers.find({"declared": True}, {"_id": 1})])

    async def declared(self) -> frozenset[str]:
        """The budgets a finance office has declared: enrollments draw on the most local of these."""
        return frozenset([doc["_id"] async for doc in self.declarations.find({})])

    async def declare(self, keys: Iterable[str]) -> None:
        """Mark budgets declared once their allocation is settled; a declaration is never withdrawn."""
        await insert_new(self.declarations, [{"_id": key} for key in dict.fromkeys(keys)])

    async def load(self, keys: Iterable[str]) -> dict[str, Ledger]:
        """The ledgers of these budgets; one never written yet is empty (sequence 0)."""
        ledgers = await newest_ledgers(self._db, keys, self._newest)
        self._newest.update(ledgers)
        return ledgers

    async def swap(self, before: Ledger, after: Ledger) -> bool:
        """Make `after` the next version if nobody changed the ledger since `before` was read; False if somebody
        did. Then the summary follows (a failure there only leaves it behind: loads follow the versions)."""
        return not await self.swap_many([(before, after)])

    async def swap_many(self, changes: Sequence[tuple[Ledger, Ledger]], *, summarise: bool = True) -> set[str]:
        """`swap` for many ledgers in one insert of their versions, whatever their number (a batch touches a
        budget per region and source, hundreds of them), then the summaries. Returns the budgets whose version
        was taken by another instance meanwhile; the others are changed.

        Without `summarise` no summary is written. With it, those `SUMMARY_EVERY` versions behind what this
        instance last wrote are (the summaries cost a bulk write per `BULK_SLICE` budgets, and were most of a
        batch's budget time). The admit step swaps without them and settle, a moment later, with them."""
        documents = []
        for before, after in changes:
            document = ledger_document(after)
            document["sequence"] = before.sequence + 1
            documents.append(document)
        if not documents:
            return set()
        versions = [{**d, "_id": version_id(d["_id"], d["sequence"]), "budget": d["_id"]} for d in documents]
        lost = {documents[index]["_id"] for index in await insert_new(self.versions, versions)}
        for before, after in changes:
            if after.budget.key not in lost:
                self._newest[after.budget.key] = replace(after, sequence=before.sequence + 1)
        if summarise:
            await self._summarise([d for d in documents if d["_id"] not in lost and self._summary_due(d)])
        return lost

    def _summary_due(self, document: Document) -> bool:
        last = self._summarised.get(document["_id"])
        return last is None or document["sequence"] - last >= SUMMARY_EVERY

    async def _summarise(self, documents: list[Document]) -> None:
        # A summary's first write may be of any version (the admit step writes none): inserted if there is none.
        known = {documents[index]["_id"] for index in await insert_new(self.ledgers, documents)}
        inserted = {d["_id"] for d in documents} - known
        # Not atomic on FerretDB (see above): a slower writer may put an older version back; loads do not care.
        replaces = [
            ReplaceOne({"_id": d["_id"], "sequence": {"$lt": d["sequence"]}}, d)
            for d in documents
            if d["_id"] not in inserted
        ]
        await bulk_update(self.ledgers, replaces)
        self._summarised.update({d["_id"]: d["sequence"] for d in documents})

    async def carried(self, budget: BudgetKey) -> Charge:
        """What the participations active at the start of the budget's year, reserved in an earlier year on
        the same region and source, need for all its twelve months (the rates each month: `reserved_now`)."""
        return (await self.carried_many([budget]))[budget.key]

    async def carried_many(self, budgets: Iterable[BudgetKey]) -> dict[str, Charge]:
        """`carried` for many budgets in one read of the participants (FerretDB scans the collection for any
        filter but `_id`, so one read per budget cost a scan each)."""
        wanted: dict[str, list[BudgetKey]] = {}
        for budget in budgets:
            wanted.setdefault(f"{budget.region_code}|{budget.funding_source.value}", []).append(budget)
        months: dict[str, dict[str, int]] = {b.key: {} for group in wanted.values() for b in group}
        workers = dict.fromkeys(months, 0)
        if wanted:
            cursor = self.participants.find(
                {"budget": {"$in": list(wanted)}, "status": "ACTIVE"}, {"state": 1, "budget": 1}
            )
            async for doc in cursor:
                record = ParticipantRecord.model_validate_json(doc["state"])
                for budget in wanted.get(doc["budget"], ()):
                    year = budget.fiscal_year
                    if record.reserved is None or record.reserved.fiscal_year >= year:
                        continue  # reserved in this year already, by its own decision
                    now = reserved_now(record, year)
                    if now is None:
                        continue
                    workers[budget.key] += 1
                    for month, amount in now.by_month.items():
                        months[budget.key][month] = months[budget.key].get(month, 0) + amount
        return {
            budget.key: replace(
                Charge(budget),
                amount=sum(months[budget.key].values()),
                workers=workers[budget.key],
                by_month=dict(sorted(months[budget.key].items())),
            )
            for group in wanted.values()
            for budget in group
        }

    async def all_ledgers(self) -> list[Ledger]:
        return list((await newest_ledgers(self._db)).values())

    # --- held requests ---------------------------------------------------------------------------------------

    async def waiting(self, keys: Iterable[str]) -> dict[str, Held]:
        """The held answers of these requests, where they are still waiting for a verdict."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        cursor = self.holds.find({"_id": {"$in": wanted}, "status": "WAITING"}, {"held": 1})
        return {doc["_id"]: Held.model_validate_json(doc["held"]) async for doc in cursor}

    async def held_request(self, key: str) -> bytes | None:
        """The held request event as it came (its NIK in it), to send back to intake."""
        doc = await self.holds.find_one({"_id": key}, {"request": 1})
        if doc is None:
            return None
        return self._sealer.open(doc["request"], key.encode())

    async def keep_held(self, decisions: Sequence[Decision], requests: dict[str, bytes]) -> None:
        """Record held requests (with their event, sealed) and every verdict; safe to repeat."""
        now = datetime.now(UTC).isoformat()
        for decision in decisions:
            outcome = decision.outcome
            if isinstance(outcome, RequestHeld) and decision.verdict is None:
                raw = requests.get(decision.key)
                fields: Document = {
                    "status": "WAITING",
                    "held": outcome.data.model_dump_json(),
                    "partner_id": outcome.data.partner_id,
                    "region_code": outcome.data.budget.region_code,
                    "budget": outcome.data.budget.key,
                    "held_at": now,
                }
                if raw is not None:
                    fields["request"] = self._sealer.seal(raw, decision.key.encode())
                await self.holds.update_one({"_id": decision.key}, {"$setOnInsert": fields}, upsert=True)
            elif isinstance(outcome, HoldDecidedEvent):
                data = outcome.data
                held_key = f"{data.held_partner_id}:{data.held_request_id}"
                trail = {"decision": decision.key, "by": data.partner_id, "resolution": data.resolution.value}
                await self.holds.update_one({"_id": held_key}, {"$addToSet": {"verdicts": _dumps(trail)}})
            elif decision.verdict is not None and not isinstance(outcome, RequestHeld):
                # Decided again on a verdict: registered, refused or rejected, the hold is over.
                held_key = decision.key.split("#", 1)[0]
                await self.holds.update_one(
                    {"_id": held_key, "status": "WAITING"},
                    {"$set": {"status": "CLOSED", "closed_by": decision.key, "closed_with": outcome.type}},
                )

    async def list_waiting(self, region_prefix: str | None = None) -> list[Held]:
        query: Document = {"status": "WAITING"}
        docs = [doc async for doc in self.holds.find(query, {"held": 1, "region_code": 1})]
        return [
            Held.model_validate_json(doc["held"])
            for doc in docs
            if region_prefix is None
            or doc["region_code"] == region_prefix
            or doc["region_code"].startswith(region_prefix + ".")
        ]
