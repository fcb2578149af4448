"""The request log against the real FerretDB: a decision replayed from it writes what the decision wrote.

The log is the outbox: after a crash between its write and the participant and history writes, the batch is
answered from it and its writes replayed. Its history entry leaves out the snapshot the participation holds
already, and its participation the snapshot the outcome event carries (the log is the largest insert, and
FerretDB's cost grows with a document's bytes); a replay must put them back, and entries logged before that,
with their snapshots, must still read.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient

from bench.data import identified_requests, partners
from services.registration.domain.decisions import Context, Partner, decide
from services.registration.store import MongoRegistrationStore, history_document, log_entry, participant_document
from shared.crypto import Sealer
from shared.events import EnrollmentRequested
from shared.regions import load_regions

pytestmark = pytest.mark.integration

TODAY = date(2026, 12, 2)


def enrollments(count: int) -> list[Any]:
    ctx = Context(
        today=TODAY, regions=load_regions(), nik_secret=b"s" * 32, now=datetime.combine(TODAY, time(2), tzinfo=UTC)
    )
    known = {p["partner_id"]: Partner.model_validate(p) for p in partners(4)}
    decisions = []
    for _, (_, value, _) in identified_requests(count, 11, today=TODAY):
        request = EnrollmentRequested.model_validate_json(value)
        decision = decide(request, known[request.source.removeprefix("partner/")], None, ctx)
        if decision.participant is not None:
            decisions.append(decision)
    return decisions


async def test_a_replay_from_the_log_writes_the_history_the_decision_wrote(
    mongodb_url: str, unique: str, service_env: dict[str, str]
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    database = f"registration_{unique}"
    store = MongoRegistrationStore(client, database, Sealer(service_env["LINDUNGI_SEAL_KEY"]))
    decisions = enrollments(40)
    # A held request: a history entry with no participation, so its snapshot stays in the log.
    held = replace(decisions[-1], key=decisions[-1].key + "-held", participant=None)
    held = replace(held, history=replace(held.history, request_key=held.key, hold="HELD"))
    # An entry logged before the log left snapshots out: its history in full.
    old = decisions[-2]
    decisions = [*decisions[:-2], held]
    try:
        await store.create_indexes()
        assert await store.record(decisions) == set()
        await store.requests.insert_one(
            {
                **log_entry(old),
                "participant": old.participant.model_dump_json(exclude={"nik"}),
                "history": json.dumps(history_document(old.history)),
            }
        )
        logged = {d["_id"]: d async for d in store.requests.find({})}
        assert "snapshot" in json.loads(logged[held.key]["history"])
        assert "snapshot" in json.loads(logged[old.key]["history"])
        assert "snapshot" in json.loads(logged[old.key]["participant"])
        compact = [d for k, d in logged.items() if k not in (held.key, old.key)]
        assert not any("snapshot" in json.loads(d["history"]) for d in compact)
        assert not any("snapshot" in json.loads(d["participant"]) for d in compact)
        # About 4,300 bytes on average with the snapshots.
        assert sum(len(bson.encode(d)) for d in compact) / len(compact) < 3_000

        # The crash: the log written, nothing else. The redelivered batch is answered from the log, replayed.
        every = [*decisions, old]
        replayed = await store.recorded(d.key for d in every)
        assert set(replayed) == {d.key for d in every}
        await store.apply(list(replayed.values()))
        history = {h["_id"]: h async for h in store.history.find({})}
        assert history == {d.key: history_document(d.history) for d in every}
        for decision in every:
            entry = replayed[decision.key].history
            assert entry is not None
            assert history_document(entry) == history_document(decision.history)
            assert replayed[decision.key].outcome_json == decision.outcome_json
            replayed_participation = replayed[decision.key].participant
            if decision.participant is None:
                assert replayed_participation is None
            else:
                assert replayed_participation is not None
                assert replayed_participation.snapshot == decision.participant.snapshot
                assert replayed_participation.model_dump(exclude={"nik_sealed"}) == decision.participant.model_dump(
                    exclude={"nik_sealed"}
                )
        participants = {p["_id"]: p async for p in store.participants.find({}, {"nik_sealed": 0})}
        assert participants == {
            d.participant.participant_id: participant_document(d.participant) for d in every if d.participant
        }
    finally:
        await client.drop_database(database)
        await client.close()
