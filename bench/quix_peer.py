"""The peer reporting is measured against: Quix Streams counting per region from the outcome topic.

Idiomatic Quix: turn each event into what the count needs, `group_by` region (a repartition topic, so one
region's counts live in one place whichever partition the events came from), and fold the counts into the
application's state store (RocksDB, with its changelog topic for recovery). Two sets of counts:

- `same` (the target's baseline): the counts reporting keeps, computed the same way. Each event is checked
  against the outcome contract (`shared.events`, as reporting reads it) and turned into its change per leaf
  region (kecamatan, else regency/city) by reporting's own `effects`; each leaf's counters (segment,
  category, programs, funding, sex, age band, contributions by payer, flows, rejection reasons and
  partners) are one value in the state store. So the two differ in the engine (client, state, checkpoints),
  not in the arithmetic. Reporting does more still: it deduplicates event ids, rolls leaves up to regency,
  province and nation, and publishes the aggregates.
- `headline`: what the headline figures are made of and no more: events per outcome type and the active
  participants per regency/city, from the parsed JSON without the contract check.

    python -m bench.quix_peer     settings from BENCH_QUIX_* (see `main`)
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from pydantic import ValidationError

from services.reporting.domain.counters import add_into, effects
from shared.events import outcome_adapter

NATIONAL = "ID"  # a rejection without a region is counted for the nation, as reporting does
ACTIVE_CHANGE = {
    "id.lindungi.participant.registered": 1,
    "id.lindungi.participant.reactivated": 1,
    "id.lindungi.participant.terminated": -1,
}


def project(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    participant = data.get("participant")
    region = participant["region_code"] if participant is not None else data.get("region_code")
    return {"region": region or NATIONAL, "type": event["type"]}


def count(value: dict[str, Any], state: Any) -> None:
    kind = value["type"]
    state.set(kind, state.get(kind, 0) + 1)
    change = ACTIVE_CHANGE.get(kind)
    if change:
        state.set("active", state.get("active", 0) + change)


def leaf_changes(value: bytes) -> list[dict[str, Any]]:
    """One message per leaf region the event changes; an event outside the contract changes nothing."""
    try:
        event = outcome_adapter.validate_json(value)
    except ValidationError:
        return []
    return [{"region": leaf, "counters": delta} for leaf, delta in effects(event).items()]


def fold(value: dict[str, Any], state: Any) -> None:
    counters = state.get("counters", {})
    add_into(counters, value["counters"])
    state.set("counters", counters)


def main() -> None:
    warnings.simplefilter("ignore")  # a dependency's deprecation notice is not the benchmark's output
    from quixstreams import Application  # noqa: PLC0415 - after silencing its import-time warnings

    same = os.environ.get("BENCH_QUIX_COUNTS", "same") == "same"
    app = Application(
        broker_address=os.environ["BENCH_QUIX_BOOTSTRAP"],
        consumer_group=os.environ["BENCH_QUIX_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["BENCH_QUIX_STATE_DIR"],
        # Reporting commits after every durable batch; one second keeps the peer's checkpoints frequent too.
        commit_interval=1.0,
        loglevel=logging.WARNING,
    )
    outcomes = app.topic(os.environ["BENCH_QUIX_TOPIC"], value_deserializer="bytes" if same else "json")
    sdf = app.dataframe(outcomes)
    if same:
        sdf = sdf.apply(leaf_changes, expand=True)
        sdf = sdf.group_by(lambda value: value["region"], name="region")
        sdf = sdf.update(fold, stateful=True)
    else:
        sdf = sdf.apply(project)
        sdf = sdf.group_by(lambda value: value["region"], name="region")
        sdf = sdf.update(count, stateful=True)
    app.run()


if __name__ == "__main__":
    main()
