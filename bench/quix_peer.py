"""The peer reporting is measured against: Quix Streams computing per-region counts from the outcome topic.

Idiomatic Quix: project each event to the little the count needs, `group_by` region (a repartition topic, so
one region's counts live in one place whichever partition the events came from), and fold the counts into
the application's state store (RocksDB, with its changelog topic for recovery). Per region it keeps what
reporting's headline figures are made of: events per outcome type, and the active participants.

    python -m bench.quix_peer     settings from BENCH_QUIX_* (see `main`)
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

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


def main() -> None:
    warnings.simplefilter("ignore")  # a dependency's deprecation notice is not the benchmark's output
    from quixstreams import Application  # noqa: PLC0415 - after silencing its import-time warnings

    app = Application(
        broker_address=os.environ["BENCH_QUIX_BOOTSTRAP"],
        consumer_group=os.environ["BENCH_QUIX_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["BENCH_QUIX_STATE_DIR"],
        # Reporting commits after every durable batch; one second keeps the peer's checkpoints frequent too.
        commit_interval=1.0,
        loglevel=logging.WARNING,
    )
    outcomes = app.topic(os.environ["BENCH_QUIX_TOPIC"], value_deserializer="json")
    sdf = app.dataframe(outcomes)
    sdf = sdf.apply(project)
    sdf = sdf.group_by(lambda value: value["region"], name="region")
    sdf = sdf.update(count, stateful=True)
    app.run()


if __name__ == "__main__":
    main()
