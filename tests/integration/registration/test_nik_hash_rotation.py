"""Rotating LINDUNGI_NIK_HASH_SECRET: registration stopped, its participations moved to the new secret's ids by
`python -m services.registration.rehash`, and deduplication still right when it starts again with the new secret.

Against the real broker and the real MongoDB-protocol server; registration as a process, the rehash as the
command an operator runs. One scenario, in the order an operator lives it; each phase is a function below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.registration.domain.participation import participant_id
from services.registration.rehash import rekeyed
from services.registration.store import participant_document, participant_from_document
from shared import events as ev
from shared.crypto import Sealer
from shared.privacy import nik_hash
from tests.integration.registration.secrets_support import Deployment, enrollment, new_nik, records_in, update

pytestmark = pytest.mark.integration

REHASH = "services.registration.rehash"
OLD, NEW = b"the-secret-before-the-rotation", b"the-secret-after-the-rotation"
OLD_SECRET, NEW_SECRET = {"nik_hash_secret": OLD.decode()}, {"nik_hash_secret": NEW.decode()}


@dataclass
class Workers:
    """Thirty workers enrolled before the rotation (NIK -> request id), the first ten of them updated."""

    enrolled: dict[str, str]
    updated: dict[str, str] = field(default_factory=dict)

    def old_id(self, nik: str) -> str:
        return participant_id(nik, ev.Segment.BPU, OLD)

    def new_id(self, nik: str) -> str:
        return participant_id(nik, ev.Segment.BPU, NEW)

    def new_ids(self) -> set[str]:
        return {self.new_id(nik) for nik in self.enrolled}


def reasons(outcome: Any) -> set[str]:
    return {r.code for r in outcome.data.reasons}


async def enrolled_under_the_old_secret(deployment: Deployment, workers: Workers) -> dict[str, list[Any]]:
    async with deployment.running("old-secret", **OLD_SECRET):
        await deployment.send(enrollment(rid, nik) for nik, rid in workers.enrolled.items())
        await deployment.outcomes(set(workers.enrolled.values()))
        await deployment.send(update(rid, nik, 1_500_000) for nik, rid in workers.updated.items())
        got = await deployment.outcomes(set(workers.enrolled.values()) | set(workers.updated.values()))
        # While registration runs, the rehash refuses and changes nothing.
        code, output = await deployment.command(REHASH, **NEW_SECRET).finished()
        assert code == 3, output
        assert "stop every registration instance" in output
    return got


async def prepare_an_interrupted_run_and_a_clash(deployment: Deployment, workers: Workers, sealer: Sealer) -> str:
    """The first worker as a run cut short leaves it (under its new id, the old document still there); the
    second with its new id taken by another state, as registration started too early with the new secret
    would leave it. Returns the second worker's NIK."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(deployment.mongodb_url)
    participants = client[deployment.database]["participants"]
    try:
        cut_short, clash = list(workers.enrolled)[:2]
        for nik, version_change in ((cut_short, 0), (clash, 5)):
            record = participant_from_document(await participants.find_one({"_id": workers.old_id(nik)}) or {})
            moved = rekeyed(record, nik, NEW)
            document = participant_document(moved.model_copy(update={"version": moved.version + version_change}))
            document["nik_sealed"] = sealer.seal(nik.encode(), workers.new_id(nik).encode())
            await participants.insert_one(document)
    finally:
        await client.close()
    return clash


async def rehashed(deployment: Deployment, workers: Workers, clash: str) -> None:
    code, output = await deployment.command(REHASH, "--check", **NEW_SECRET).finished()
    assert code == 2, output  # the clash is found before anything is written
    assert "participants moved 29, participants current 2, participants conflicting 1" in output
    code, output = await deployment.command(REHASH, **NEW_SECRET).finished()
    assert code == 2, output
    assert "log rewritten 0, log current 0" in output  # the log waits until every participation has moved
    assert workers.old_id(clash) in {d["_id"] for d in await deployment.documents("participants")}  # kept
    # The operator resolves the clash (docs/operations.md), then runs the command again.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(deployment.mongodb_url)
    try:
        await client[deployment.database]["participants"].delete_one({"_id": workers.new_id(clash)})
    finally:
        await client.close()
    code, output = await deployment.command(REHASH, **NEW_SECRET).finished()
    assert code == 0, output
    assert "participants moved 1, participants current 29" in output
    assert "log rewritten 40, log current 0" in output
    code, output = await deployment.command(REHASH, "--check", **NEW_SECRET).finished()
    assert code == 0, output  # nothing left: running it again changes nothing
    assert "participants moved 0, participants current 30, participants conflicting 0" in output
    assert "log rewritten 0, log current 40" in output


async def assert_moved(deployment: Deployment, workers: Workers, sealer: Sealer) -> None:
    """Every participation under its new id only, its NIK bound to it; its history and log states moved too."""
    stored = {d["_id"]: d for d in await deployment.documents("participants")}
    assert set(stored) == workers.new_ids()
    for nik in workers.enrolled:
        document = stored[workers.new_id(nik)]
        assert document["nik_hash"] == nik_hash(nik, NEW)
        assert sealer.open(document["nik_sealed"], document["_id"].encode()).decode() == nik
    history = await deployment.documents("history")
    assert len(history) == 40
    assert {h["participant_id"] for h in history} == workers.new_ids()
    assert all(json.loads(h["snapshot"])["participant_id"] == h["participant_id"] for h in history)
    logged = [json.loads(e["participant"]) for e in await deployment.documents("requests") if e.get("participant")]
    assert {p["participant_id"] for p in logged} == workers.new_ids()


async def test_a_rehash_keeps_every_worker_once_under_the_new_secret(
    tmp_path: Path, service_env: dict[str, str], unique: str
) -> None:
    deployment = Deployment.of(tmp_path, service_env, unique)
    sealer = Sealer(service_env["LINDUNGI_SEAL_KEY"])
    enrolled = {new_nik(): f"{unique}-e{i}" for i in range(30)}
    workers = Workers(enrolled, {nik: f"{unique}-u{i}" for i, nik in enumerate(list(enrolled)[:10])})

    before = await enrolled_under_the_old_secret(deployment, workers)
    assert {d["_id"] for d in await deployment.documents("participants")} == {workers.old_id(n) for n in enrolled}
    clash = await prepare_an_interrupted_run_and_a_clash(deployment, workers, sealer)
    published = await records_in(deployment.bootstrap, f"outcomes.{unique}")
    await rehashed(deployment, workers, clash)
    await assert_moved(deployment, workers, sealer)
    # Nothing published: reporting and notification see no event, so nothing is counted or sent twice.
    assert await records_in(deployment.bootstrap, f"outcomes.{unique}") == published

    # Registration with the new secret finds the same workers: none enrolled twice, updates land on them.
    again = {nik: f"{unique}-again{i}" for i, nik in enumerate(list(enrolled)[:5])}
    later = {nik: f"{unique}-later{i}" for i, nik in enumerate(list(enrolled)[5:15])}
    fresh_nik = new_nik()
    resent_nik, resent = list(enrolled.items())[20]  # a partner's re-send of a request from before the rotation
    async with deployment.running("new-secret", **NEW_SECRET):
        await deployment.send(
            [
                *(enrollment(rid, nik) for nik, rid in again.items()),
                *(update(rid, nik, 2_000_000) for nik, rid in later.items()),
                enrollment(f"{unique}-fresh", fresh_nik),
                enrollment(resent, resent_nik),
            ]
        )
        got = await deployment.outcomes({*again.values(), *later.values(), f"{unique}-fresh", resent})

    assert all(reasons(got[rid][0]) == {"PARTICIPANT_ALREADY_ACTIVE"} for rid in again.values())
    for nik, rid in later.items():
        outcome = got[rid][0]
        assert isinstance(outcome, ev.ParticipantUpdated)
        assert outcome.data.participant.participant_id == workers.new_id(nik)
        assert outcome.data.version == (3 if nik in workers.updated else 2)
    assert isinstance(got[f"{unique}-fresh"][0], ev.ParticipantRegistered)
    assert {o.id for o in got[resent]} == {before[resent][0].id}  # answered from the log, as the first time
    # No worker twice, and the re-send did not bring an old id back.
    ids = {d["_id"] for d in await deployment.documents("participants")}
    assert ids == workers.new_ids() | {workers.new_id(fresh_nik)}
