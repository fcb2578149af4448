"""Registration's MongoDB: partners, participants (NIK sealed), an append-only history, and the request log.

The request log is both the idempotency record (one document per partner and request id) and the outbox:
it holds the decided outcome event and the participant state it leads to. It is written first; the
participant and history writes that follow replay it (an insert that meets its own earlier copy is a no-op;
an update sets the recorded state). Offsets are committed only after the outcomes are published, so after a
crash anywhere in between, Kafka redelivers the batch, the log answers every request in it, the writes are
replayed and the very same outcome events (same ids) are published again. No multi-document transaction is
needed, which FerretDB and a standalone MongoDB do not have. A partition normally has one consumer at a
time, so a participation's changes are applied in order; during a rebalance two may briefly overlap, and
then the log's first writer wins and a participation's version only moves forward (`_set_if_newer`).

NIKs are sealed (AES-GCM, `shared.crypto`) bound to their participant id, in the participants and in the log's
participant states. A write seals with the current key and re-seals a carried-over value sealed with an older
one, so that during a key rotation the service itself never writes an old key's value back; `sealed_fields`
tells the re-seal walk (reseal.py) where the rest are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from cryptography.exceptions import InvalidTag
from pymongo import ASCENDING, AsyncMongoClient, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.registration.budgets import budget_fields, budget_from_fields
from services.registration.domain.participation import Decision, HistoryEntry, ParticipantRecord, Partner
from shared.crypto import Sealer
from shared.events import CloudEvent, Participant, ParticipantStatus, RequestAction, outcome_adapter
from shared.resealing import SealedField, SealedValue

log = structlog.get_logger("registration")

DUPLICATE_KEY = 11000

Document = dict[str, Any]


# --- documents in and out ------------------------------------------------------------------------------------
# The shapes below are what existing databases hold: change them only with a migration.


def partner_document(partner: Partner) -> Document:
    document = partner.model_dump(mode="json")
    return {"_id": document.pop("partner_id"), **document}


def partner_from_document(document: Document) -> Partner:
    fields = {k: v for k, v in document.items() if k != "_id"}
    return Partner.model_validate({**fields, "partner_id": document["_id"]})


def participant_document(record: ParticipantRecord) -> Document:
    """Scalars a reader or an index needs stay fields; the rest is one JSON string, because FerretDB converts
    every nested field on write (a nested participant costs about four times a flat one). The sealed NIK is
    added by the writer."""
    reserved = record.reserved
    return {
        "_id": record.participant_id,
        "nik_hash": record.nik_hash,
        "version": record.version,
        "status": record.status.value,
        "segment": record.snapshot.segment.value,
        "region_code": record.snapshot.region_code,
        # The budget that pays for it, without the year: what the new year's ledger carries over (budgets.py).
        "budget": None if reserved is None else f"{reserved.region_code}|{reserved.funding_source.value}",
        "state": record.model_dump_json(exclude={"nik", "nik_sealed"}),
    }


def participant_from_document(document: Document) -> ParticipantRecord:
    record = ParticipantRecord.model_validate_json(document["state"])
    return record.model_copy(update={"nik_sealed": document.get("nik_sealed")})


def history_document(entry: HistoryEntry) -> Document:
    """A history entry, keyed by its request so that a replay inserts it once."""
    return {
        "_id": entry.request_key,
        "participant_id": entry.participant_id,
        "version": entry.version,
        "action": entry.action.value,
        "status": entry.status.value,
        "partner_id": entry.partner_id,
        "request_id": entry.request_id,
        "request_event_id": entry.request_event_id,
        "requested_at": entry.requested_at.isoformat(),
        "decided_at": entry.decided_at.isoformat(),
        "snapshot": entry.snapshot_json,
        "decided_by": entry.decided_by or entry.partner_id,
        "hold": entry.hold,
    }


def history_from_document(document: Document) -> HistoryEntry:
    return HistoryEntry(
        request_key=document["_id"],
        participant_id=document["participant_id"],
        version=document["version"],
        action=RequestAction(document["action"]),
        status=ParticipantStatus(document["status"]),
        partner_id=document["partner_id"],
        request_id=document["request_id"],
        request_event_id=document["request_event_id"],
        requested_at=datetime.fromisoformat(document["requested_at"]),
        decided_at=datetime.fromisoformat(document["decided_at"]),
        snapshot=Participant.model_validate_json(document["snapshot"]),
        decided_by=document.get("decided_by"),
        hold=document.get("hold"),
    )


def log_entry(decision: Decision, participation: ParticipantRecord | None = None) -> Document:
    """The request-log entry; `participation` is the participant as the store keeps it (its NIK sealed),
    when it differs from the decision's. Nested values are JSON strings, as in `participant_document`.

    The log is the largest insert, and FerretDB's cost grows with a document's bytes, so nothing in it is
    written twice: the participation's snapshot is the outcome's `participant` (left out of the state when it
    is), and the history entry's snapshot is the participation's (left out of the entry). An entry was
    4.3 KB with both copies, 2.8 KB without; `decision_from_log_entry` puts them back."""
    participation = participation or decision.participant
    state = None
    if participation is not None:
        shared = _same(participation.snapshot, _published(decision.outcome))
        state = participation.model_dump_json(exclude={"nik", "snapshot"} if shared else {"nik"})
    history = None
    if decision.history is not None:
        entry = history_document(decision.history)
        if participation is not None and _same(decision.history.snapshot, participation.snapshot):
            del entry["snapshot"]
        history = json.dumps(entry)
    return {
        "_id": decision.key,
        "outcome": decision.outcome_json,
        "outcome_key": decision.outcome_key,
        "partner_id": decision.partner_id,
        "participant": state,
        "history": history,
        "warnings": list(decision.warnings),
        **budget_fields(decision),
    }


def _published(outcome: CloudEvent[Any]) -> Participant | None:
    """The participation an outcome event carries (a rejection or a hold carries none)."""
    participant: Participant | None = getattr(outcome.data, "participant", None)
    return participant


def _same(snapshot: Participant, other: Participant | None) -> bool:
    return snapshot is other or snapshot == other


def logged_participation(document: Document, outcome: CloudEvent[Any] | None = None) -> ParticipantRecord | None:
    """A log entry's participation in full (entries written before the log left snapshots out have it so)."""
    state = document.get("participant")
    if state is None:
        return None
    fields = json.loads(state)
    if "snapshot" not in fields:
        fields["snapshot"] = _published(outcome or outcome_adapter.validate_json(document["outcome"]))
    return ParticipantRecord.model_validate(fields)


def logged_history(document: Document, participation: ParticipantRecord | None = None) -> Document | None:
    """A log entry's history entry in the history collection's shape, its snapshot put back."""
    history = document.get("history")
    if history is None:
        return None
    entry: Document = json.loads(history)
    if "snapshot" not in entry:
        # Left out only when the entry has a participation (`log_entry`).
        participation = participation or logged_participation(document)
        entry["snapshot"] = None if participation is None else participation.snapshot.model_dump_json()
    return entry


def decision_from_log_entry(document: Document) -> Decision:
    outcome = outcome_adapter.validate_json(document["outcome"])
    participation = logged_participation(document, outcome)
    history = logged_history(document, participation)
    return Decision(
        key=document["_id"],
        outcome=outcome,
        outcome_key=document["outcome_key"],
        partner_id=document["partner_id"],
        participant=participation,
        history=None if history is None else history_from_document(history),
        warnings=tuple(document.get("warnings", ())),
        **budget_from_fields(document),
    )


def _ignore_duplicates(error: BulkWriteError) -> None:
    """A duplicate key in an idempotent replay means "already written": anything else is a real failure."""
    others = [e for e in error.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
    if others or error.details.get("writeConcernErrors"):
        raise error


class MongoRegistrationStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str, sealer: Sealer) -> None:
        self._db: AsyncDatabase[Document] = client[database]
        self._sealer = sealer
        self.partners = self._db["partners"]
        self.participants = self._db["participants"]
        self.history = self._db["history"]
        self.requests = self._db["requests"]

    async def create_indexes(self) -> None:
        await self.participants.create_index([("nik_hash", ASCENDING)])
        await self.participants.create_index([("budget", ASCENDING), ("status", ASCENDING)])
        await self.history.create_index([("participant_id", ASCENDING), ("version", ASCENDING)])

    async def _by_ids(self, collection: Any, ids: Iterable[str]) -> list[Document]:
        """One query per batch, answered from the `_id` index (on FerretDB v1 only with the local stack's
        pushdown patch: unpatched, an `$in` reads the whole collection)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        return [doc async for doc in collection.find({"_id": {"$in": unique}})]

    # --- partners ----------------------------------------------------------------------------------------

    async def load_partners(self) -> dict[str, Partner]:
        return {doc["_id"]: partner_from_document(doc) async for doc in self.partners.find({})}

    async def upsert_partner(self, partner: Partner) -> None:
        document = partner_document(partner)
        try:
            await self.partners.replace_one({"_id": partner.partner_id}, document, upsert=True)
        except DuplicateKeyError:
            # Two instances seeding at once both miss, both insert, and one loses (MongoDB retries this
            # itself, FerretDB does not). The partner now exists, so a plain replace lands.
            await self.partners.replace_one({"_id": partner.partner_id}, document)

    async def delete_partner(self, partner_id: str) -> bool:
        result = await self.partners.delete_one({"_id": partner_id})
        return result.deleted_count == 1

    # --- reads for a batch -------------------------------------------------------------------------------

    async def recorded(self, keys: Iterable[str]) -> dict[str, Decision]:
        """Decisions already taken for these request keys (the idempotency record)."""
        return {doc["_id"]: decision_from_log_entry(doc) for doc in await self._by_ids(self.requests, keys)}

    async def participations(self, participant_ids: Iterable[str]) -> dict[str, ParticipantRecord]:
        docs = await self._by_ids(self.participants, participant_ids)
        return {doc["_id"]: participant_from_document(doc) for doc in docs}

    # --- writes for a batch ------------------------------------------------------------------------------

    async def record(self, decisions: Sequence[Decision]) -> set[str]:
        """Write the request log (outbox) for new decisions; returns the keys another instance recorded first.

        During a rebalance two consumers can briefly handle the same records: the first log write wins, and
        the loser must adopt the winner's decisions instead of publishing its own.
        """
        if not decisions:
            return set()
        now = datetime.now(UTC)
        documents = []
        for decision in decisions:
            after = decision.participant
            if after is not None and after.nik is not None:
                # A replay from the log must still be able to keep the NIK (sealed) with the participant.
                sealed = self._sealer.seal(after.nik.encode(), after.participant_id.encode())
                after = after.model_copy(update={"nik_sealed": sealed})
            elif after is not None and after.nik_sealed is not None and not self._sealer.is_current(after.nik_sealed):
                after = after.model_copy(
                    update={"nik_sealed": self._current_seal(after.nik_sealed, after.participant_id)}
                )
            documents.append({**log_entry(decision, after), "recorded_at": now})
        try:
            await self.requests.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            _ignore_duplicates(error)
            return {decisions[e["index"]].key for e in error.details.get("writeErrors", [])}
        return set()

    async def apply(self, decisions: Sequence[Decision]) -> None:
        """Replay decisions onto participants and history; safe to repeat.

        The two collections are written at the same time (neither reads the other). FerretDB updates cost a
        round of SQLite work each while inserts are batched, so a participation first seen in this batch is
        inserted, and only a change to an existing one is a (conditional) update.
        """
        async with asyncio.TaskGroup() as writes:
            writes.create_task(self._write_participants(decisions))
            writes.create_task(self._write_history(decisions))

    async def _write_participants(self, decisions: Sequence[Decision]) -> None:
        inserts: list[Document] = []
        for document, is_new in self._participant_states(decisions):
            if is_new:
                inserts.append(document)
            else:
                await self._set_if_newer(document)
        if inserts:
            try:
                await self.participants.insert_many(inserts, ordered=False)
            except BulkWriteError as error:
                _ignore_duplicates(error)
                # Already there from an earlier attempt at this batch: bring it to this batch's state.
                for failed in error.details.get("writeErrors", []):
                    await self._set_if_newer(inserts[failed["index"]])

    async def _write_history(self, decisions: Sequence[Decision]) -> None:
        # A held request has a history entry too (who held it, and later who approved it), but no participation.
        history = [history_document(d.history) for d in decisions if d.history is not None]
        if history:
            try:
                await self.history.insert_many(history, ordered=False)
            except BulkWriteError as error:
                _ignore_duplicates(error)  # already written by an earlier attempt at this batch

    def _participant_states(self, decisions: Sequence[Decision]) -> list[tuple[Document, bool]]:
        """One document per participation: its last state in the batch, with its NIK sealed, and whether the
        batch created it. An enrollment followed by an update in one batch keeps the enrollment's NIK."""
        latest: dict[str, ParticipantRecord] = {}
        created: set[str] = set()
        sealed: dict[str, str] = {}
        for decision in decisions:
            after = decision.participant
            if after is None:
                continue
            pid = after.participant_id
            if pid not in latest and after.version == 1:
                created.add(pid)
            # The newest version wins, not the last in the batch: a partner's re-send of an old request is
            # answered from the log with the state it led to then, which must not undo what followed it.
            if pid not in latest or after.version >= latest[pid].version:
                latest[pid] = after
            if after.nik is not None:
                # The participant id binds the ciphertext to its document.
                sealed[pid] = self._sealer.seal(after.nik.encode(), pid.encode())
            elif after.nik_sealed is not None:  # carried over from the stored state, or replayed from the log
                sealed.setdefault(pid, self._current_seal(after.nik_sealed, pid))
        states = []
        for pid, after in latest.items():
            document = participant_document(after)
            if pid in sealed:
                document["nik_sealed"] = sealed[pid]
            states.append((document, pid in created))
        return states

    async def _set_if_newer(self, document: Document) -> None:
        """Set a participation's state unless the stored one is as new or newer (a replay of an old request
        must never move a participation back).

        One conditional update, not a read then a write: during a rebalance two consumers can briefly apply
        the same partition's decisions, and a read-then-write lets the slower one put an older version back.
        (On FerretDB this needs the local stack's `_id` pushdown patch, deploy/local/stack: unpatched, a
        filter beyond a lone `_id` scans the whole collection.)
        """
        # $set keeps the sealed NIK of the first enrollment when this state does not carry one.
        result = await self.participants.update_one(
            {"_id": document["_id"], "version": {"$lt": document["version"]}}, {"$set": document}
        )
        if result.matched_count:
            return
        with contextlib.suppress(DuplicateKeyError):  # there already, as new or newer
            await self.participants.insert_one(document)

    def _current_seal(self, token: str, participant_id: str) -> str:
        """The sealed NIK as this write should store it: sealed with the current key. During a key rotation a
        write thereby never puts back a value sealed with the old key (the re-seal walk may have passed the
        document already). A value no key of the ring opens is kept as it is: failing the batch would stop the
        intake for one unreadable participant, and `python -m services.registration.reseal` reports it."""
        try:
            return self._sealer.resealed(token, participant_id.encode())
        except (InvalidTag, ValueError):
            log.warning("a sealed NIK cannot be opened with the configured keys", participant_id=participant_id)
            return token

    async def open_nik(self, participant_id: str) -> str | None:
        """The NIK in clear, for an operator's authorised export only; never logged."""
        doc = await self.participants.find_one({"_id": participant_id}, {"nik_sealed": 1})
        if doc is None or "nik_sealed" not in doc:
            return None
        return self._sealer.open(doc["nik_sealed"], participant_id.encode()).decode()

    # --- secrets rotation (reseal.py, rehash.py) -------------------------------------------------------------

    def sealed_fields(self) -> list[SealedField]:
        """Where registration keeps sealed NIKs, for the re-seal walk: each participation, and the participant
        state in each request-log entry (which a replay writes back). Both are bound to the participant id."""
        return [
            SealedField("participants", self.participants, ("nik_sealed",), _stored_seal, _stored_reseal),
            SealedField("request log", self.requests, ("participant",), _logged_seal, _logged_reseal),
        ]


def _stored_seal(document: Document) -> SealedValue | None:
    token = document.get("nik_sealed")
    return None if token is None else SealedValue(token, document["_id"].encode())


def _stored_reseal(document: Document, token: str) -> UpdateOne:
    return UpdateOne({"_id": document["_id"], "nik_sealed": document["nik_sealed"]}, {"$set": {"nik_sealed": token}})


def _logged_seal(document: Document) -> SealedValue | None:
    if document.get("participant") is None:
        return None
    state = json.loads(document["participant"])
    token = state.get("nik_sealed")
    return None if token is None else SealedValue(token, state["participant_id"].encode())


def _logged_reseal(document: Document, token: str) -> UpdateOne:
    state = json.loads(document["participant"])
    state["nik_sealed"] = token
    resealed = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    return UpdateOne(
        {"_id": document["_id"], "participant": document["participant"]}, {"$set": {"participant": resealed}}
    )
