"""Two writes every service's store needs, written once for the servers they run on (MongoDB and FerretDB v1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo.errors import BulkWriteError

if TYPE_CHECKING:
    from pymongo import ReplaceOne, UpdateOne
    from pymongo.asynchronous.collection import AsyncCollection

Document = dict[str, Any]
DUPLICATE_KEY = 11000
#: The most updates one bulk write carries. FerretDB v1 holds a SQLite connection for every update of a bulk
#: write until the command ends, and a few hundred at once exhaust its pool of 100: the command never answers
#: (seen in the bench with budget summaries and notification settlements).
BULK_SLICE = 25


async def insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> set[int]:
    """Insert the documents whose `_id` is not there yet; the positions of those that were there already."""
    if not documents:
        return set()
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        # Duplicates are the point (a redelivery, another instance first); anything else is a real failure.
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        if all(isinstance(error.get("index"), int) for error in errors):
            return {int(error["index"]) for error in errors}
        return set(range(len(documents)))  # a server that does not say which: treat them all as known
    return set()


async def bulk_update(
    collection: AsyncCollection[Document], writes: list[UpdateOne] | list[ReplaceOne[Document]]
) -> int:
    """Unordered bulk updates in slices of `BULK_SLICE`, one after the other; how many matched."""
    matched = 0
    for start in range(0, len(writes), BULK_SLICE):
        result = await collection.bulk_write(writes[start : start + BULK_SLICE], ordered=False)
        matched += result.matched_count
    return matched
