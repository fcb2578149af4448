"""`python -m services.registration.rehash [--check]`: registration moved to a new `LINDUNGI_NIK_HASH_SECRET`.

What the secret is. A participant id is `<HMAC-SHA256(secret, NIK)>:<segment>` and every outcome carries the
`nik_hash`: the secret is part of every participation's identity. Registration finds a worker's participation
by computing the id from the NIK in the request, so with another secret it would find none: it would enroll
the worker a second time and refuse an update as "not registered". Deduplication survives a change of secret
only if every stored participation is moved to the id the new secret gives before registration decides a
single request with it. This command does that, with registration stopped (its intake waits in Kafka:
nothing is lost, outcomes are only late):

1. it refuses while registration's consumer group has members;
2. every participation whose id is not the new secret's: its NIK opened (sealed, bound to the old id), the
   document written under the new id and hash (the NIK sealed again, bound to the new id), then the old
   document deleted;
3. once every participation has moved, every request-log entry's participant state likewise, so that a
   replayed entry (a partner's re-send of an old request id) lands on the moved participation instead of
   bringing back the old id; with it the history entry it wrote (same `_id`: found without a scan, which
   FerretDB cannot do by `participant_id`). The logged outcomes stay as they were published.

Every step can be repeated, so a run cut short is simply run again; `--check` counts what is left. It needs
only the new secret: what still has to move is whatever the new secret does not give back from its own NIK.
As a migration, this module knows the documents as store.py writes them.

Not chosen: a dual-secret period in which registration looks every worker up under both secrets and moves a
participation when it meets it. It doubles every lookup, needs the old secret for as long as any worker has
not sent a request (so possibly for ever), and a sweep like this one is needed anyway to finish. Outcomes
already published keep the old hashes: see docs/operations.md "Rotating secrets" for what that means
downstream (reporting and notification are not affected: they count and deliver per event, not per worker).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any

import typer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeGroupsRequest, DescribeGroupsRequest_v2
from cryptography.exceptions import InvalidTag
from pymongo import AsyncMongoClient, ReplaceOne, UpdateOne

from services.registration.domain.participation import ParticipantRecord, participant_id
from services.registration.settings import RegistrationSettings
from services.registration.store import (
    Document,
    MongoRegistrationStore,
    logged_history,
    logged_participation,
    participant_document,
    participant_from_document,
)
from shared.logging import configure_logging
from shared.privacy import nik_hash

if TYPE_CHECKING:
    from shared.crypto import Sealer

_STATEMENTS_PER_WRITE = 50  # FerretDB v1 does not answer an update command of 100 statements (shared.resealing)

cli = typer.Typer(add_completion=False, help=__doc__.splitlines()[0] if __doc__ else None)


class RegistrationRunningError(Exception):
    """Registration's consumer group has members: moving participations under it would split workers."""


@dataclass
class RehashProgress:
    participants_moved: int = 0
    participants_current: int = 0
    participants_conflicting: int = 0  # the new id holds another state: registration ran with the new secret
    participants_unreadable: int = 0  # no sealed NIK, or no configured seal key opens it
    log_rewritten: int = 0
    log_current: int = 0
    log_unreadable: int = 0

    @property
    def finished(self) -> bool:
        return not (self.participants_conflicting or self.participants_unreadable or self.log_unreadable)

    def describe(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self))


def rekeyed(record: ParticipantRecord, nik: str, secret: bytes) -> ParticipantRecord:
    """A participation under the id and hash `secret` gives its NIK (carried in memory, to be sealed)."""
    hashed = nik_hash(nik, secret)
    pid = participant_id(nik, record.snapshot.segment, secret)
    snapshot = record.snapshot.model_copy(update={"participant_id": pid, "nik_hash": hashed})
    return record.model_copy(
        update={"participant_id": pid, "nik_hash": hashed, "snapshot": snapshot, "nik": nik, "nik_sealed": None}
    )


def rekeyed_history(document: Document, pid: str, hashed: str) -> Document:
    """A history document (collection `history`, or a log entry's `history`) under a participation's new id."""
    snapshot = json.loads(document["snapshot"])
    snapshot.update(participant_id=pid, nik_hash=hashed)
    return {**document, "participant_id": pid, "snapshot": json.dumps(snapshot, separators=(",", ":"))}


async def consumers_of(settings: RegistrationSettings) -> list[str]:
    """The client ids of the registration consumer group's members (none: registration is stopped)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="lindungi-registration-rehash",
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        coordinator = await admin.find_coordinator(settings.group_id)
        # Private: the public describe_consumer_groups cannot be told which version to ask for (see below).
        answer = await admin._client.send(coordinator, _DescribeGroupsV2([settings.group_id]))  # noqa: SLF001
    finally:
        await admin.close()
    return [member[1] for group in answer.groups for member in group[5]]


class _DescribeGroupsV2(DescribeGroupsRequest):  # type: ignore[misc]  # aiokafka has no type information
    """aiokafka 0.14 reads a version-3 DescribeGroups answer with the version-2 layout and fails on Kafka 4:
    ask for version 2, which carries the members all the same."""

    def build(self, request_struct_class: Any) -> Any:  # noqa: ARG002 - the version is fixed on purpose
        return DescribeGroupsRequest_v2(self._groups)


class Rehash:
    """One run over registration's database with the new secret; `check` counts without writing.

    Writes go in batches (a few round trips per 500 participations, bulk writes of 50 statements, which
    FerretDB v1 needs: see `shared.resealing`); registration is stopped, so nothing else writes meanwhile.
    """

    def __init__(self, store: MongoRegistrationStore, sealer: Sealer, secret: bytes, *, check: bool) -> None:
        self.store, self.sealer, self.secret, self.check = store, sealer, secret, check
        self.progress = RehashProgress()

    def _target(self, record: ParticipantRecord) -> ParticipantRecord | None:
        """The participation under the new secret's id (None when its NIK cannot be opened)."""
        if record.nik_sealed is None:
            return None
        try:
            nik = self.sealer.open(record.nik_sealed, record.participant_id.encode()).decode()
        except (InvalidTag, ValueError):
            return None
        return rekeyed(record, nik, self.secret)

    def _sealed_state(self, target: ParticipantRecord) -> ParticipantRecord:
        sealed = self.sealer.seal((target.nik or "").encode(), target.participant_id.encode())
        return target.model_copy(update={"nik_sealed": sealed})

    async def participations(self, batch_size: int = 500) -> None:
        """Every participation present when the run starts, read by id in batches: the moves add and delete
        documents, and a cursor over a changing collection may show a moved one twice or not at all."""
        ids = [document["_id"] async for document in self.store.participants.find({}, {"_id": 1})]
        for start in range(0, len(ids), batch_size):
            moves: list[tuple[str, ParticipantRecord]] = []
            async for document in self.store.participants.find({"_id": {"$in": ids[start : start + batch_size]}}):
                record = participant_from_document(document)
                target = self._target(record)
                if target is None:
                    self.progress.participants_unreadable += 1
                elif target.participant_id == record.participant_id:
                    self.progress.participants_current += 1
                else:
                    moves.append((record.participant_id, target))
            await self._move(moves)

    async def _move(self, moves: list[tuple[str, ParticipantRecord]]) -> None:
        """Insert under the new ids, then delete the old documents: each step repeatable (with `check`, only
        counted). A new id that holds another state is a conflict: that participation is left as it is."""
        if not moves:
            return
        wanted = [target.participant_id for _, target in moves]
        there = {d["_id"]: d["state"] async for d in self.store.participants.find({"_id": {"$in": wanted}})}
        inserts: list[Document] = []
        moved: list[str] = []
        for old_id, target in moves:
            document = participant_document(target)
            if target.participant_id in there and there[target.participant_id] != document["state"]:
                self.progress.participants_conflicting += 1
                continue
            self.progress.participants_moved += 1
            moved.append(old_id)
            if target.participant_id not in there:  # there with this state: a run cut short wrote it
                document["nik_sealed"] = self._sealed_state(target).nik_sealed
                inserts.append(document)
        if self.check:
            return
        if inserts:
            await self.store.participants.insert_many(inserts, ordered=False)
        if moved:
            await self.store.participants.delete_many({"_id": {"$in": moved}})

    async def request_log(self) -> None:
        """Each log entry's participant state under the new id, and the history entry it wrote."""
        pending: list[tuple[Document, ParticipantRecord]] = []
        async for document in self.store.requests.find({}, {"outcome": 1, "participant": 1, "history": 1}):
            record = logged_participation(document)
            if record is None:
                continue
            target = self._target(record)
            if target is None:
                self.progress.log_unreadable += 1
            elif target.participant_id == record.participant_id:
                self.progress.log_current += 1
            else:
                self.progress.log_rewritten += 1
                pending.append((document, target))
            if len(pending) == _STATEMENTS_PER_WRITE:
                await self._rewrite_logged(pending)
                pending = []
        await self._rewrite_logged(pending)

    async def _rewrite_logged(self, entries: list[tuple[Document, ParticipantRecord]]) -> None:
        if self.check or not entries:
            return
        history_writes: list[ReplaceOne[Document]] = []
        log_writes: list[UpdateOne] = []
        for document, target in entries:
            state = self._sealed_state(target).model_dump_json(exclude={"nik"})
            logged = logged_history(document)
            history = None
            if logged is not None:
                entry = rekeyed_history(logged, target.participant_id, target.nik_hash)
                # Absent when the entry was logged but not applied: the replay that applies it writes this one.
                history_writes.append(ReplaceOne({"_id": entry["_id"]}, entry))
                # The log leaves out a snapshot that is the participation's (store.log_entry).
                shared = "snapshot" not in json.loads(document["history"])
                history = json.dumps({k: v for k, v in entry.items() if not (shared and k == "snapshot")})
            # The condition only keeps a second run from rewriting what a first one did.
            log_writes.append(
                UpdateOne(
                    {"_id": document["_id"], "participant": document["participant"]},
                    {"$set": {"participant": state, "history": history}},
                )
            )
        # The history entries first: once its log entry is rewritten, a second run passes an entry by.
        if history_writes:
            await self.store.history.bulk_write(history_writes, ordered=False)
        await self.store.requests.bulk_write(log_writes, ordered=False)


async def rehash(settings: RegistrationSettings, *, check: bool = False) -> RehashProgress:
    members = [] if check else await consumers_of(settings)  # counting is safe while registration runs
    if members:
        raise RegistrationRunningError(
            f"consumer group {settings.group_id} has {len(members)} member(s) ({', '.join(sorted(members))}): "
            "stop every registration instance first"
        )
    sealer = settings.sealer()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        run = Rehash(
            MongoRegistrationStore(client, settings.mongodb_database, sealer),
            sealer,
            settings.nik_hash_secret.get_secret_value().encode(),
            check=check,
        )
        await run.participations()
        if check or run.progress.finished:
            # Only once every participation has its new id: a log entry must not point where nothing is.
            await run.request_log()
        return run.progress
    finally:
        await client.close()


@cli.command()
def main(check: Annotated[bool, typer.Option("--check", help="count only; write nothing")] = False) -> None:  # noqa: FBT002
    """Move registration's participations to the ids LINDUNGI_NIK_HASH_SECRET gives (registration stopped)."""
    settings = RegistrationSettings()
    configure_logging("registration-rehash", settings.log_level, settings.log_format)
    try:
        progress = asyncio.run(rehash(settings, check=check))
    except RegistrationRunningError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(3) from error
    typer.echo(progress.describe())
    if not progress.finished:
        typer.echo("not finished: see the conflicting or unreadable counts (docs/operations.md)")
        raise typer.Exit(2)
    if check and progress.participants_moved + progress.log_rewritten:
        typer.echo("not finished: run without --check")
        raise typer.Exit(1)
    typer.echo("finished: every participation is under the id the current secret gives")


if __name__ == "__main__":
    cli()
