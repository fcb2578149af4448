"""The reliability and security suite: the non-negotiables, tried hard under faults.

    python -m tests.e2e.reliability             the reduced run (what `make test` runs, a few minutes)
    python -m tests.e2e.reliability --full      the full run; writes its summary to docs/reliability.md
    python -m tests.e2e.reliability --soak      the soak (`make reliability-soak`, not in CI): 200,000 requests,
                                                100 faults drawn at random; writes its summary there too

A run starts a private Kafka + FerretDB stack of its own on free ports (a broker restart and a store outage
would break every other test sharing the session's servers), the three services as separate processes
(two instances of registration and of reporting, each pair in one consumer group), an SMTP server and an
HTTP receiver standing in for workers' mailboxes, the SMS gateway, partners' webhooks and subscribers.

It publishes a seeded stream of enrollment requests at a steady rate (invalid ones, partners' re-sends,
unauthorised partners and lifecycle requests in and out of order mixed in) and, while the stream flows,
injects faults at random moments: kill -9 of a random service instance (restarted each time), a broker
restart, a hung broker (SIGSTOP, then SIGCONT), a broker kill -9, a store outage (FerretDB stopped, then
started), the store's disk full (a tmpfs the run mounts, filled, then freed), an instance's wall clock stepped
(libfaketime) and a rebalance (one instance of each group killed and left down until the survivor has taken
its partitions over); after each, how long the system takes to ride it out. Then it compares what the system holds and
published with an independent computation from the inputs, and scans every place a NIK could leak.

The explanation kept in docs/reliability.md is the template `DOC_TEMPLATE` in `report.py`: a full run
regenerates the file from it, so edit the template, not the file.

The modules, in the order a run uses them: `plan` (how hard a run tries, the partners and subscribers),
`workload` (the stream and the answer each request must get), `stack`, `clock` and `fleet` (the private Kafka
and FerretDB, the receivers, the service processes under libfaketime), `stream` (publishing), `chaos` and
`outages` (the faults), `probes` (reading topics, groups and health), `settle`, `figures`, `verification` and
`dashboard` (the independent computation and the comparison), `verdict` (what was found, the NIK scan),
`report`, and `run` (one run, in order).
"""

from __future__ import annotations

from tests.e2e.reliability.chaos import Fault
from tests.e2e.reliability.figures import expected_figures
from tests.e2e.reliability.plan import FULL, REDUCED, WIB, Plan, authority
from tests.e2e.reliability.probes import lag, read_topic
from tests.e2e.reliability.report import Report
from tests.e2e.reliability.run import run
from tests.e2e.reliability.verdict import Verdict, scan
from tests.e2e.reliability.workload import Expectation, Participation, Workload, build_workload

# A run pickles its Report with its logs (see `__main__`); the classes it holds are named here too, so a
# pickle written when this package was one module still loads.
__all__ = [
    "FULL",
    "REDUCED",
    "WIB",
    "Expectation",
    "Fault",
    "Participation",
    "Plan",
    "Report",
    "Verdict",
    "Workload",
    "authority",
    "build_workload",
    "expected_figures",
    "lag",
    "read_topic",
    "run",
    "scan",
]
