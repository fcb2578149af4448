"""Re-sealing stored values with the current seal key, while the service that owns them keeps running.

A rotation of `LINDUNGI_SEAL_KEY` (docs/operations.md "Rotating secrets") leaves values sealed with the old key
in the databases; every service opens them with its key ring meanwhile. This walk re-seals them: each
collection is read once, a value already sealed with the current key is recognised by its prefix without
decrypting, and every other value is opened, sealed again and written back with a conditional update that
matches only while the document still holds the value that was read. A service's own write in between wins
(the service seals with the current key too), so the walk never puts back an older state. A walk can stop
anywhere and run again: it only ever has the remaining values to do. `check` counts without writing; the
rotation is finished when it finds nothing left to re-seal.

Each store says where its sealed values are (`SealedField`): this module knows no document shapes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.exceptions import InvalidTag

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pymongo import UpdateOne
    from pymongo.asynchronous.collection import AsyncCollection

    from shared.crypto import Sealer

log = structlog.get_logger("resealing")

Document = dict[str, Any]

# FerretDB v1.24 (the local stack) does not answer an `update` command of 100 statements or more (measured
# there: 99 conditional updates return in 50 ms, 100 not within 30 s): bulk writes stay well below that.
_STATEMENTS_PER_WRITE = 50


@dataclass(frozen=True)
class SealedValue:
    """A sealed value as found in a document, and the associated data it was sealed with."""

    token: str
    associated_data: bytes | None


@dataclass(frozen=True)
class SealedField:
    """Where a collection keeps one sealed value per document.

    `read` finds the value in a document read with `projection` (None: the document holds none);
    `replace` is the conditional update that puts a new token in place of the one read, and only of it.
    """

    name: str
    collection: AsyncCollection[Document]
    projection: tuple[str, ...]
    read: Callable[[Document], SealedValue | None]
    replace: Callable[[Document, str], UpdateOne]


@dataclass
class ResealProgress:
    """What a walk found in one field; `stale` values were not sealed with the current key when read."""

    name: str
    scanned: int = 0
    current: int = 0
    stale: int = 0
    resealed: int = 0
    changed: int = 0  # stale when read, rewritten by the service before the walk's update: its write won
    unreadable: int = 0  # sealed with a key that is not in the ring, or altered

    @property
    def finished(self) -> bool:
        """Nothing left sealed with an old key, as far as this walk can tell."""
        return self.stale == self.resealed and not self.unreadable

    def describe(self) -> str:
        counts = ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self) if f.name != "name")
        return f"{self.name}: {counts}"


async def reseal(
    field: SealedField,
    sealer: Sealer,
    *,
    check: bool = False,
    batch_size: int = 500,
    pause_seconds: float = 0.0,
) -> ResealProgress:
    """Walk one field: re-seal (or with `check`, only count) every value not sealed with the current key.

    Updates go out `batch_size` at a time (in bulk writes of at most 50), with `pause_seconds` between batches
    to leave the database to the live service on a busy day.
    """
    progress = ResealProgress(field.name)
    pending: list[UpdateOne] = []
    projection = dict.fromkeys(field.projection, 1)
    async for document in field.collection.find({}, projection):
        value = field.read(document)
        if value is None:
            continue
        progress.scanned += 1
        if sealer.is_current(value.token):
            progress.current += 1
            continue
        progress.stale += 1
        try:
            if check:
                sealer.open(value.token, value.associated_data)  # only whether it can be opened
                continue
            token = sealer.resealed(value.token, value.associated_data)
        except (InvalidTag, ValueError):
            progress.unreadable += 1
            log.warning("sealed value cannot be opened", field=field.name, document=str(document.get("_id")))
            continue
        pending.append(field.replace(document, token))
        if len(pending) >= batch_size:
            await _write(field, pending, progress)
            pending = []
            if pause_seconds:
                await asyncio.sleep(pause_seconds)
    if pending:
        await _write(field, pending, progress)
    return progress


async def _write(field: SealedField, updates: list[UpdateOne], progress: ResealProgress) -> None:
    for start in range(0, len(updates), _STATEMENTS_PER_WRITE):
        chunk = updates[start : start + _STATEMENTS_PER_WRITE]
        result = await field.collection.bulk_write(chunk, ordered=False)
        progress.resealed += result.matched_count
        progress.changed += len(chunk) - result.matched_count
    log.info("re-sealed", field=field.name, resealed=progress.resealed, changed=progress.changed)


def verdict(progress: Sequence[ResealProgress]) -> tuple[int, str]:
    """A re-seal command's exit code and report (a line per collection, then the verdict): 0 finished (the old
    key is no longer needed for these values), 1 not finished (run again), 2 values no configured key opens."""
    lines = [p.describe() for p in progress]
    if any(p.unreadable for p in progress):
        code, last = 2, "values no configured key opens: is a previous key missing from LINDUNGI_SEAL_KEYS_PREVIOUS?"
    elif not all(p.finished for p in progress):
        code, last = 1, "not finished: values still sealed with another key than the current one; run again"
    else:
        code, last = 0, "finished: every value is sealed with the current key"
    return code, "\n".join([*lines, last])
