"""The ledger's group commit: callers ask one item at a time, the writer sends what has gathered in one write.

The writes here are plain functions that record what they were given; what one grouped write does to the
ledger (claims under a token, settlements conditional on it) is tested against the real server in
tests/integration/notification.
"""

from __future__ import annotations

import asyncio

import pytest

from services.notification.ledger import GroupCommit


class Writes:
    """A write function that records each group and answers each item with its double."""

    def __init__(self, *, fail_first: bool = False, hold: asyncio.Event | None = None) -> None:
        self.groups: list[list[int]] = []
        self.fail_first = fail_first
        self.hold = hold
        self.writing = asyncio.Event()

    async def __call__(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        self.writing.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_first and len(self.groups) == 1:
            raise ConnectionError("the server went away")
        return [item * 2 for item in items]


async def test_callers_of_the_same_moment_share_one_write_and_each_gets_its_own_answer() -> None:
    writes = Writes()
    group = GroupCommit(writes)
    assert await asyncio.gather(*(group(n) for n in range(10))) == [n * 2 for n in range(10)]
    assert writes.groups == [list(range(10))]


async def test_callers_arriving_during_a_write_form_the_next_group() -> None:
    release = asyncio.Event()
    writes = Writes(hold=release)
    group = GroupCommit(writes)
    first = asyncio.gather(*(group(n) for n in range(3)))
    await writes.writing.wait()  # the first write is under way (and held)
    later = asyncio.gather(*(group(n) for n in range(3, 8)))
    await asyncio.sleep(0.01)
    release.set()
    assert await first == [0, 2, 4]
    assert await later == [6, 8, 10, 12, 14]
    assert writes.groups == [[0, 1, 2], [3, 4, 5, 6, 7]]


async def test_a_group_is_never_larger_than_the_limit() -> None:
    writes = Writes()
    group = GroupCommit(writes, limit=4)
    await asyncio.gather(*(group(n) for n in range(10)))
    assert writes.groups == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_a_failed_write_fails_every_caller_of_its_group_and_the_next_group_is_written() -> None:
    writes = Writes(fail_first=True)
    group = GroupCommit(writes, limit=2)
    results = await asyncio.gather(*(group(n) for n in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [ConnectionError, ConnectionError]
    assert results[2:] == [4, 6]


async def test_a_cancelled_caller_stops_waiting_but_its_group_is_still_written() -> None:
    release = asyncio.Event()
    writes = Writes(hold=release)
    group = GroupCommit(writes)
    impatient = asyncio.create_task(group(1))
    patient = asyncio.create_task(group(2))
    await writes.writing.wait()
    impatient.cancel()
    release.set()
    assert await patient == 4
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert writes.groups == [[1, 2]]


async def test_drain_waits_for_the_writes_already_asked_for() -> None:
    release = asyncio.Event()
    writes = Writes(hold=release)
    group = GroupCommit(writes)
    caller = asyncio.create_task(group(1))
    await writes.writing.wait()
    caller.cancel()  # as at shutdown: the caller is gone, the write goes on
    draining = asyncio.create_task(group.drain())
    await asyncio.sleep(0.01)
    assert not draining.done()
    release.set()
    await draining
    assert writes.groups == [[1]]
