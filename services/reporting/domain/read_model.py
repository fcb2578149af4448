"""The read model: for every region that has data, the sum of the counters of all leaves at or below it, over
all source partitions.

It is changed only by the net change of a durable batch (or of a partition reloaded from the store), so what
is shown is what is stored. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.reporting.domain.counters import Counters, add_into, lineage, parent_of

if TYPE_CHECKING:
    from collections.abc import Mapping


class ReadModel:
    """Counters per region at every level, summed over all partitions, and which regions changed."""

    def __init__(self) -> None:
        self._totals: dict[str, Counters] = {}
        self._children: dict[str, set[str]] = {}
        self.dirty: set[str] = set()
        self.offsets: dict[str, int] = {}  # `topic:partition` -> next offset reflected

    def add(self, leaf_deltas: Mapping[str, Mapping[str, int]], sign: int = 1) -> None:
        for leaf, delta in leaf_deltas.items():
            if not delta:
                continue
            for code in lineage(leaf):
                if code not in self._totals:
                    self._totals[code] = {}
                    parent = parent_of(code)
                    if parent is not None:
                        self._children.setdefault(parent, set()).add(code)
                add_into(self._totals[code], delta, sign)
                self.dirty.add(code)  # published once more (with zeros, if it has just emptied)
                if not self._totals[code]:
                    self._forget(code)

    def _forget(self, code: str) -> None:
        """A region whose every counter is back to zero has no data any more, as if never seen."""
        del self._totals[code]
        parent = parent_of(code)
        if parent is not None:
            self._children.get(parent, set()).discard(code)

    def set_offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.offsets[f"{topic}:{partition}"] = next_offset

    def counters(self, code: str) -> Counters:
        return self._totals.get(code, {})

    def codes(self) -> set[str]:
        """Every region that has (or had) data, with all its ancestors."""
        return set(self._totals)

    def children_with_data(self, code: str) -> set[str]:
        return set(self._children.get(code, ()))

    def own_level(self, code: str) -> Counters:
        """What is counted at this region itself and at none of its children (no kecamatan, no region)."""
        own = dict(self.counters(code))
        for child in self._children.get(code, ()):
            add_into(own, self.counters(child), -1)
        return own

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty
