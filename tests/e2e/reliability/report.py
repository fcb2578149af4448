"""The report of a run: the summary printed, and docs/reliability.md rendered from `DOC_TEMPLATE` below."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.e2e.reliability.chaos import Fault
from tests.e2e.reliability.plan import FULL, REDUCED, SOAK, WIB, Plan
from tests.e2e.reliability.verdict import Verdict
from tests.e2e.reliability.workload import Workload
from tests.support import ROOT

DOC = ROOT / "docs" / "reliability.md"
RESENT = re.compile(r"(\d+) resent after a crash")


@dataclass
class Report:
    plan: Plan
    command: str
    started: datetime
    seconds: float
    work: Workload
    faults: list[Fault]
    verdict: Verdict
    resent_chunks: int
    settle_notes: list[str]
    commit: str = "unknown"  # the checkout the services ran from, read when the run began

    def rows(self) -> list[tuple[str, str]]:
        v = self.verdict
        kinds = Counter(f.kind for f in self.faults)
        targets = ", ".join(f.target for f in self.faults if f.kind == "kill -9")
        faults = ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items()))
        distinct = len(self.work.expectations)
        return [
            ("faults injected", f"{len(self.faults)}: {faults} (killed: {targets})"),
            (
                "requests",
                (
                    f"{len(self.work.records)} records published, {distinct} distinct requests "
                    f"({self.work.accepted} to accept, {distinct - self.work.accepted} to reject)"
                ),
            ),
            ("lost", str(v.lost.total())),
            ("doubled", str(v.doubled.total())),
            ("mismatches", str(v.mismatches.total())),
            ("notifications sent twice", self.sent_twice()),
            ("NIK leaks", f"{v.leaks.total()} (other 16-digit runs: {v.nik_shaped.total()})"),
            ("faults not ridden out", str(len(v.problems))),
            ("longest recovery", self.longest_recovery()),
            ("duration", f"{self.seconds / 60:.1f} min"),
        ]

    def sent_twice(self) -> str:
        """Intents recorded twice (two deliveries, two keys: a real double), and the same delivery sent again
        after a crash (one key: receivers drop it, as partners are asked to)."""
        doubled = self.verdict.doubled["notification intents in the ledger more than once"]
        resent = next((m.group(1) for c in self.verdict.checks if (m := RESENT.search(c))), "?")
        return f"{doubled} (sent again after a crash with the same idempotency key: {resent})"

    def longest_recovery(self) -> str:
        took = [(t, f.kind) for f in self.faults if (t := getattr(f, "recovered_seconds", None)) is not None]
        if not took:
            return "not measured by this run"
        seconds, kind = max(took)
        return f"{seconds:g} s ({kind}); the bound is {self.plan.recover_seconds:g} s"

    def recovery(self) -> str:
        """Per class of fault: how many, and the longest time to ride one out."""
        by_kind: dict[str, list[Fault]] = {}
        for fault in self.faults:
            by_kind.setdefault(fault.kind, []).append(fault)
        rows = [
            "| fault | times | longest lasted (s) | longest recovery (s) | mean recovery (s) |",
            "|---|---|---|---|---|",
        ]
        for kind, faults in sorted(by_kind.items()):
            took = [t for f in faults if (t := getattr(f, "recovered_seconds", None)) is not None]
            longest = f"{max(took):g}" if took else "not measured"
            mean = f"{sum(took) / len(took):.1f}" if took else ""
            rows.append(f"| {kind} | {len(faults)} | {max(f.seconds for f in faults):g} | {longest} | {mean} |")
        return "\n".join(rows)

    def recipients(self) -> str:
        table = getattr(self.verdict, "recipients", {})
        if not table:
            return "not recorded by this run"
        statuses = sorted({s for counts in table.values() for s in counts})
        rows = [f"| recipient | {' | '.join(statuses)} |", "|---|" + "---|" * len(statuses)]
        rows += [f"| {kind} | {' | '.join(str(c.get(s, 0)) for s in statuses)} |" for kind, c in table.items()]
        return "\n".join(rows)

    def section(self) -> str:
        """This run's part of docs/reliability.md, between its markers."""
        table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in self.rows())])
        faults = "\n".join(
            [
                "| # | fault | target | at (s) | in flight | lasted (s) | recovered in (s) | observed |",
                "|---|---|---|---|---|---|---|---|",
                *(
                    f"| {i} | {f.kind} | {f.target} | {f.at_seconds:g} | {f.published - f.answered} "
                    f"| {f.seconds:g} | {getattr(f, 'recovered_seconds', None) or ''} "
                    f"| {'; '.join(f.problems + f.notes)} |"
                    for i, f in enumerate(self.faults, start=1)
                ),
            ]
        )
        mix = "\n".join(f"| {kind} | {n} |" for kind, n in sorted(self.work.kinds.items()))
        checks = "\n".join(f"- {c}" for c in [*self.verdict.checks, *self.settle_notes])
        findings = "\n".join(
            f"- {where}: {'; '.join(items)}" for where, items in sorted(self.verdict.examples.items()) if items
        )
        findings += "".join(f"\n- {p}" for p in self.verdict.problems)
        return SECTION_TEMPLATE.format(
            kind=self.plan.name,
            title="soak run" if self.plan.random_faults else "full run",
            table=table,
            recovery=self.recovery(),
            recover_seconds=f"{self.plan.recover_seconds:g}",
            faults=faults,
            recipients=self.recipients(),
            mix=mix,
            checks=checks,
            findings=findings.strip() or "none",
            plan=self.plan.describe(),
            command=self.command,
            date=self.started.astimezone(WIB).strftime("%Y-%m-%d %H:%M WIB"),
            machine=machine(),
            commit=self.commit,
        )

    def markdown(self, current: str = "") -> str:
        """docs/reliability.md with this run's section; the other run's section and everything after the
        generated part (sections other suites append) are kept from `current`, the file as it is."""
        sections = {kind: _between(current, kind) for kind in ("full", "soak")}
        if not sections["full"] and "## Last full run" in current:  # the file from before the markers
            sections["full"] = current[current.index("## Last full run") : current.index("## How it works")].strip()
        mine = "soak" if self.plan.random_faults else "full"
        sections[mine] = self.section()
        if current.count(END) == 1:
            tail = current.split(END, 1)[1].strip("\n")
        else:  # the file from before the markers: a section appended at its end is kept
            tail = current[current.index(KEPT) :].strip("\n") if KEPT in current else ""
        body = DOC_TEMPLATE.format(
            full=sections["full"] or "No full run recorded yet: `make reliability` writes it.",
            soak=sections["soak"] or "No soak run recorded yet: `make reliability-soak` writes it.",
            reduced=REDUCED.describe(),
            full_plan=FULL.describe(),
            soak_plan=SOAK.describe(),
        )
        return body + (f"\n{tail}\n" if tail else "")

    def text(self) -> str:
        lines = [f"{k:>22}: {v}" for k, v in self.rows()]
        lines += ["", *self.verdict.checks, *self.settle_notes]
        lines += [f"fault {f.kind} {f.target}: {'; '.join(f.problems + f.notes)}" for f in self.faults]
        lines += [f"{where}: {items}" for where, items in sorted(self.verdict.examples.items()) if items]
        lines += self.verdict.problems
        return "\n".join(lines)


def machine() -> str:
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs{memory}, Python {platform.python_version()}"
    )


def commit() -> str:
    """The checkout's commit, marked `-dirty` when tracked files differ from it (the run is of those)."""
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False).returncode != 0  # noqa: S607
    return (result.stdout.strip() or "unknown") + ("-dirty" if changed else "")


END = "<!-- End of the generated part: everything below is kept when a run rewrites this file. -->"
KEPT = "## Bad input at volume"  # the section another suite appends, in a file from before the markers


def _between(text: str, kind: str) -> str:
    begin, end = f"<!-- {kind} run: begin -->", f"<!-- {kind} run: end -->"
    if begin not in text or end not in text:
        return ""
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


SECTION_TEMPLATE = """\
## Last {title}

{table}

`{command}`, {date}, commit `{commit}`, on {machine}. Plan: {plan}.

### Faults

Every fault must be ridden out within {recover_seconds} s of being cleared (the instance started again, the
broker continued or started, the store started, the disk freed, the clock stepped back): every instance
healthy and every request published until then answered. "In flight" is how many requests had been
published but not yet answered when the fault struck.

{recovery}

{faults}

### What was checked

{checks}

### Notification outcomes by recipient

{recipients}

### Findings

{findings}

### The stream

| request | records |
|---|---|
{mix}"""

DOC_TEMPLATE = """\
# Reliability and security

<!-- Generated by `python -m tests.e2e.reliability --full` (and `--soak`) from the templates in
     tests/e2e/reliability/report.py: edit the templates there, not this file. A full run rewrites its
     section and keeps the soak's, and the other way round. -->

The non-negotiables are that no request is lost or counted twice, that every figure is right, that every
notification reaches its recipient once, and that a NIK never appears in clear outside the intake topic.
This suite tries hard to break them, with real Kafka, the real MongoDB-protocol server and the services as
separate processes, as in production.

<!-- full run: begin -->
{full}
<!-- full run: end -->

<!-- soak run: begin -->
{soak}
<!-- soak run: end -->

## Which notifications fail, by design

About half of the notification intents of a run end `failed`, and that is the test's design, not a fault:
every rejection is an intent to tell the partner who sent the request, and of the three partners only
`mitra-bogor` (the one with little authority) has a webhook. `mitra-jawa`, the main partner, reads its
outcomes from its own topic (the production ACL profile) and `mitra-tak-terdaftar` is a partner
registration does not know; notification records their rejections at once as `failed` with the reason
"partner has no webhook configured", visibly, rather than dropping them. Every other recipient is
healthy: workers' e-mail (the run's SMTP server) and SMS (its gateway), `mitra-bogor`'s webhook and the
three subscribers (a webhook, an e-mail address and an SMS number), all answered by the run's receivers,
which accept everything. The run proves it: each run's table "Notification outcomes by recipient" counts
the ledger's final statuses per class of recipient, and a single `failed` delivery to a healthy recipient
(or a by-design failure for any other reason) makes the verdict fail.

## How it works

**A private stack.** A broker restart and a store outage would break every other test sharing the session's
servers, so a run starts its own Kafka and FerretDB (`deploy/local/stack` with `LINDUNGI_STATE_DIR` and
ports of its own, picked free at run time) and resets it at the end. FerretDB's data lives on a small tmpfs
the run mounts (the reduced run and the soak; it needs root, and a run that cannot mount it fails saying
so). The services run as `python -m services.<name>` with the catalogue's topic names, random
`LINDUNGI_NIK_HASH_SECRET` and `LINDUNGI_SEAL_KEY`, registration's partners from a seed file and its
production-profile copies of each outcome on the partner's own topic, and notification pointed at an SMTP
server (aiosmtpd) and an HTTP receiver the harness runs for workers' e-mail, the SMS gateway, partners'
webhooks and a webhook, an e-mail and an SMS subscriber. Registration and reporting run as two instances
each in one consumer group. Every instance runs under libfaketime (Debian's `faketime`, installed by the
run when missing) with an offset file of its own, so its wall clock can be stepped while it runs.

**The stream.** Synthetic enrollment requests (`synthetic.generate`, seeded;
a share invalid, each labelled with the reason codes the rules must give, a share re-sent by the partner),
sent by three partners: one allowed everything in the generated provinces, one allowed only Kota Bogor, PU
and BPU and three funding sources, and one registration does not know. Lifecycle requests follow some
enrollments: terminations, reactivations, a second termination, a reactivation of an active participant, a
termination that overtakes its enrollment, and re-sends of these. Requests are keyed by NIK and published
at a steady rate, so a worker's requests arrive in order and the stream is flowing when the faults land.

**Faults**, at random moments while the stream is published, one after the other (the soak draws its
hundred at random among these classes, each at least twice, from the seed; `--seed` replays a run):
- `kill -9` of a random service instance, each service at least once, restarted after up to 3 s;
- a broker restart (`stack stop-one kafka`, `start-one kafka`); partners hold their requests meanwhile;
- a hung broker: Kafka stopped with SIGSTOP for 5 to 30 s (its connections stay open and nothing
  answers), then SIGCONT; partners keep sending and retry what times out;
- a broker `kill -9`, started again at once (it recovers its logs from the unclean shutdown);
- a store outage: FerretDB stopped for the plan's time, then started; no service is restarted by hand;
- the store's disk full: the tmpfs under FerretDB's SQLite files filled with a ballast file until the store
  refuses a write (a probe writes until it does), held 5 to 15 s, then freed;
- a clock step: one instance's wall clock moved 2 to 30 minutes forward or back (its offset file rewritten;
  libfaketime reads it again within a second; the monotonic clock is left alone, as a real step leaves it;
  the instance's own `Date` header shows the step), held, then stepped back. The WIB date is kept, so the
  computation made for today still holds; forward steps stay under the broker's 1 h limit on record
  timestamps from the future (`log.message.timestamp.after.max.ms`);
- a rebalance: the second instance of registration and of reporting killed and left down until the
  consumer group shows the survivor owning every partition and the survivors alone have answered more
  requests; then started again.
During the outage and the broker restart every live instance's `/health` is polled: each must answer 503
naming the dependency that is down, and 200 again afterwards; for a hung broker, a broker killed and a full
disk what `/health` said is recorded. After each fault the run measures the time until it is ridden out
(every instance healthy, every request published before it was cleared answered) and fails beyond the bound.

**The independent computation.** The harness follows the stream in order (per worker, the order Kafka keeps)
with its own model of participations and partners' authority, so it knows for each request whether it must
be registered, terminated, reactivated or rejected, and with exactly which reason codes (the generator's
labels plus the partner-authority and lifecycle codes). From the final participations it computes every
region's figures (active, by segment, category, program, funding source, sex and age band, monthly
contributions by payer and by funding source, enrollment/termination/reactivation totals, rejections by
reason and partner), rolled up kecamatan, regency/city, province, nation. Contributions are priced with
registration's rate table (`contributions.calculate`), the one piece of domain logic borrowed. From the
outcome event ids and the subscriptions it computes every notification intent.

**What is compared**, after everything has settled (every request answered, every consumer group at the end
of its topics, reporting's read model at the end of the outcome topic, no pending delivery):
- *lost*: a request without an outcome; a valid request that is no participant; a history or request-log
  entry missing; a notification intent missing from the ledger, not delivered, or never received; a
  notification to a healthy recipient that failed; an outcome missing from the partner's own topic; a
  settled delivery never reported;
- *doubled*: a request with two outcome event ids (a re-published copy with the same event id is allowed,
  and counted); a participant or history entry too many; an intent in the ledger twice. A webhook, SMS or
  e-mail received twice with the same idempotency key counts once (receivers deduplicate by key, as
  partners are asked to) and the resends are reported;
- *mismatches*: an outcome of the wrong kind or with the wrong reasons or region; a participant in the
  wrong state; a region whose latest snapshot on the compacted topic, whose figures in either reporting
  instance's API, or whose dashboard data (`/dashboard/<code>.csv` and the active headline of the
  `/dashboard/<code>/live` JSON the open page polls) differ from the computation; a notification to
  someone who should not get it or at the wrong address; another partner's outcome on a partner's topic; a
  dead letter for a readable record; consumer lag left;
- *NIK leaks*: every NIK of the inputs (valid or not) searched in every topic but intake, every service log
  line, every notification (ledger, e-mails, webhooks, SMS), every answer of the reporting API and the
  dashboard's data and the participants collection at rest; any other 16-digit run is counted as well
  (keyed hashes left out);
- *faults not ridden out*: a health endpoint that did not report the outage, an instance that did not
  recover, an instance that died without being killed, a fault not ridden out within its bound.

The run fails on any of these. `make test` runs the reduced plan (`tests/e2e/test_reliability.py`); the bad
input corpus and partner authority are in `tests/e2e/test_bad_input.py`; the production ACLs themselves are
checked in `tests/unit/deploy/test_acls.py`.

## Running it

```sh
.venv/bin/python -m tests.e2e.reliability           # reduced: {reduced}
.venv/bin/python -m tests.e2e.reliability --full    # full: {full_plan}; writes its section here
.venv/bin/python -m tests.e2e.reliability --soak    # soak: {soak_plan}; writes its section here
make reliability-soak                               # the soak, then 100,000 fuzzed inputs (tests/e2e/fuzz)
```

Logs of each run stay in `.local/reliability/<run>/`. `--seed N` replays another stream and schedule. The
soak is not part of CI: it takes over an hour on 2 cores.

<!-- End of the generated part: everything below is kept when a run rewrites this file. -->
"""
