"""Registration's MongoDB: partners, participants (NIK sealed), an append-only history, and the request log.

The request log is both the idempotency record (one document per partner and request id) and the outbox:
it holds the decided outcome event and the participant state it leads to. It is written first; the
participant and history writes that follow replay it (an insert that meets its own earlier copy is a no-op;
an update sets the recorded state). Offsets are committed only after the outcomes are published, so after a
crash anywhere in between, Kafka redelivers the batch, the log answers every request in it, the writes are
replayed and the very same outcome events (same ids) are published again. No multi-document transaction is
needed, which FerretDB and a standalone MongoDB do not have. A partition has one consumer at a time, so a
participation's changes are applied in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.registration.domain.decisions import Decision, Partner, ParticipantRecord
from shared.crypto import Sealer

DUPLICATE_KEY = 11000

Document = dict[str, Any]


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
        await self.history.create_index([("participant_id", ASCENDING), ("version", ASCENDING)])

    # --- partners ----------------------------------------------------------------------------------------

    async def load_partners(self) -> dict[str, Partner]:
        return {doc["_id"]: Partner.from_document(doc) async for doc in self.partners.find({})}

    async def upsert_partner(self, partner: Partner) -> None:
        await self.partners.replace_one({"_id": partner.partner_id}, partner.to_document(), upsert=True)

    async def delete_partner(self, partner_id: str) -> bool:
        result = await self.partners.delete_one({"_id": partner_id})
        return result.deleted_count == 1

    # --- reads for a batch -------------------------------------------------------------------------------

    async def recorded(self, keys: Iterable[str]) -> dict[str, Decision]:
        """Decisions already taken for these request keys (the idempotency record)."""
        return {
            doc["_id"]: Decision.from_document(doc)
            async for doc in self.requests.find({"_id": {"$in": list(set(keys))}})
        }

    async def participations(self, participant_ids: Iterable[str]) -> dict[str, ParticipantRecord]:
        return {
            doc["_id"]: ParticipantRecord.from_document(doc)
            async for doc in self.participants.find({"_id": {"$in": list(set(participant_ids))}})
        }

    # --- writes for a batch ------------------------------------------------------------------------------

    async def record(self, decisions: Sequence[Decision]) -> set[str]:
        """Write the request log (outbox) for new decisions; returns the keys another instance recorded first.

        During a rebalance two consumers can briefly handle the same records: the first log write wins, and
        the loser must adopt the winner's decisions instead of publishing its own.
        """
        if not decisions:
            return set()
        now = datetime.now(UTC)
        try:
            await self.requests.insert_many([{**d.to_document(), "recorded_at": now} for d in decisions], ordered=False)
        except BulkWriteError as error:
            _ignore_duplicates(error)
            return {decisions[e["index"]].key for e in error.details.get("writeErrors", [])}
        return set()

    async def apply(self, decisions: Sequence[Decision]) -> None:
        """Replay decisions onto participants and history; safe to repeat.

        FerretDB updates cost a round of SQLite work each while inserts are batched, so a participation first
        seen in this batch is inserted, and only a change to an existing one is an update (by _id alone).
        """
        latest: dict[str, ParticipantRecord] = {}
        first_version: dict[str, int] = {}
        niks: dict[str, str] = {}
        history: list[Document] = []
        for decision in decisions:
            after = decision.participant
            if after is None:
                continue
            latest[after.participant_id] = after
            first_version.setdefault(after.participant_id, after.version)
            if after.nik is not None:
                niks[after.participant_id] = after.nik
            if decision.history is not None:
                history.append(decision.history)
        inserts: list[Document] = []
        for pid, after in latest.items():
            document = after.to_document()
            if pid in niks:
                # The NIK is kept only sealed; the participant id binds the ciphertext to its document.
                document["nik_sealed"] = self._sealer.seal(niks[pid].encode(), pid.encode())
            if first_version[pid] == 1:
                inserts.append(document)
            else:
                # An existing participation: $set keeps the sealed NIK of its first enrollment.
                await self.participants.update_one({"_id": pid}, {"$set": document}, upsert=True)
        for collection, documents in ((self.participants, inserts), (self.history, history)):
            if documents:
                try:
                    await collection.insert_many(documents, ordered=False)
                except BulkWriteError as error:
                    _ignore_duplicates(error)  # already written by an earlier attempt at this batch

    async def open_nik(self, participant_id: str) -> str | None:
        """The NIK in clear, for an operator's authorised export only; never logged."""
        doc = await self.participants.find_one({"_id": participant_id}, {"nik_sealed": 1})
        if doc is None or "nik_sealed" not in doc:
            return None
        return self._sealer.open(doc["nik_sealed"], participant_id.encode()).decode()
