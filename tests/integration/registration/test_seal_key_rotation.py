"""Rotating LINDUNGI_SEAL_KEY with registration running: participants written under key A, registration switched
to key B with A still readable, the re-seal walk run while requests keep coming, and at the end A removed.

Against the real broker and the real MongoDB-protocol server, registration as a process, the walk as the command
an operator runs (`python -m services.registration.reseal`).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shared import events as ev
from shared.crypto import Sealer, key_id, new_key
from tests.integration.registration.secrets_support import Deployment, enrollment, new_nik, update

pytestmark = pytest.mark.integration

RESEAL = "services.registration.reseal"


def sealed_niks(participants: list[dict[str, object]], log: list[dict[str, object]]) -> list[tuple[str, str]]:
    """Every sealed NIK registration keeps, with the participant id it is bound to."""
    found = [(str(doc["_id"]), str(doc["nik_sealed"])) for doc in participants]
    for entry in log:
        if entry.get("participant") is not None:
            state = json.loads(str(entry["participant"]))
            found.append((state["participant_id"], state["nik_sealed"]))
    return found


async def stored(deployment: Deployment) -> list[tuple[str, str]]:
    return sealed_niks(await deployment.documents("participants"), await deployment.documents("requests"))


def opened(sealer: Sealer, values: list[tuple[str, str]]) -> set[str]:
    return {sealer.open(token, pid.encode()).decode() for pid, token in values}


async def test_seal_key_rotation_loses_nothing_and_ends_without_the_old_key(
    tmp_path: Path, service_env: dict[str, str], unique: str
) -> None:
    key_a, key_b = new_key(), new_key()
    old_only, rotating, new_only = Sealer(key_a), Sealer(key_b, [key_a]), Sealer(key_b)
    deployment = Deployment.of(tmp_path, service_env, unique)
    first = {new_nik(): f"{unique}-a{i}" for i in range(40)}

    # 1. Registration with key A alone: 40 workers enrolled, their NIKs sealed with A.
    async with deployment.running("with-a", seal_key=key_a):
        await deployment.send(enrollment(rid, nik) for nik, rid in first.items())
        got = await deployment.outcomes(set(first.values()))
    assert all(isinstance(got[rid][0], ev.ParticipantRegistered) for rid in first.values())
    before = await stored(deployment)
    assert len(before) == 80  # 40 participants, 40 request-log states
    assert all(old_only.is_current(token) for _, token in before)
    assert opened(rotating, before) == set(first)  # B's ring opens what A sealed

    # 2. Registration with B sealing and A still opening; the walk runs while updates and enrollments arrive.
    second = {new_nik(): f"{unique}-b{i}" for i in range(20)}
    updates = {nik: f"{unique}-u{i}" for i, nik in enumerate(list(first)[:20])}
    rotate = {"seal_key": key_b, "seal_keys_previous": key_a}
    async with deployment.running("with-b-and-a", **rotate):
        # Small batches with a pause between them, and the requests sent once the walk has begun writing:
        # the walk and the service's own writes interleave.
        walk = deployment.command(RESEAL, "--batch-size", "3", "--pause", "0.2", **rotate)
        while walk.running and "re-sealed" not in walk.output.read_text():  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.05)
        await deployment.send(
            [
                *(update(rid, nik, 1_500_000) for nik, rid in updates.items()),
                *(enrollment(rid, nik) for nik, rid in second.items()),
            ]
        )
        while walk.running:  # readable throughout: every value opens with the ring at every moment
            now = opened(rotating, await stored(deployment))
            assert set(first) <= now <= set(first) | set(second)
            await asyncio.sleep(0.2)
        code, output = await walk.finished()
        assert code in {0, 1}, output  # 1: the service rewrote some values meanwhile (with key B)
        assert "request log: scanned 80, current 40, stale 40, resealed 40" in output  # only the walk rewrites these
        got = await deployment.outcomes(set(updates.values()) | set(second.values()))
        check = deployment.command(RESEAL, "--check", **rotate)
        code, output = await check.finished()
        assert code == 0, output
        assert "finished" in output
        assert key_id(key_b) in output

    # No request lost or answered twice differently: one outcome per request, each the expected kind.
    assert all(isinstance(got[rid][0], ev.ParticipantUpdated) for rid in updates.values())
    assert all(isinstance(got[rid][0], ev.ParticipantRegistered) for rid in second.values())
    assert all(len({o.id for o in got[rid]}) == 1 for rid in {*first.values(), *updates.values(), *second.values()})

    # 3. Everything is sealed with B: A can go. Registration with B alone keeps working on the old workers.
    after = await stored(deployment)
    assert len(after) == 140  # 60 participants, 80 log states
    assert all(new_only.is_current(token) for _, token in after)
    assert opened(new_only, after) == set(first) | set(second)
    last = {nik: f"{unique}-c{i}" for i, nik in enumerate(list(first)[20:25])}
    async with deployment.running("with-b", seal_key=key_b):
        await deployment.send(update(rid, nik, 2_000_000) for nik, rid in last.items())
        got = await deployment.outcomes(set(last.values()))
        code, output = await deployment.command(RESEAL, "--check", seal_key=key_b).finished()
    assert all(isinstance(got[rid][0], ev.ParticipantUpdated) for rid in last.values())
    assert code == 0, output
    assert opened(new_only, await stored(deployment)) == set(first) | set(second)
