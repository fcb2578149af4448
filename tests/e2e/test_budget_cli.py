"""`lindungi budget` and `lindungi holds` as a finance office runs them, against a registration service on the
real broker and FerretDB: each command goes out on the partner's own request topic and waits for the answer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.registration.domain.budget import commitment
from shared import events as ev
from tests.budget_requests import FINANCE, PARTNERS, SENDER, START, TODAY, enrollment
from tests.support import ROOT, ServiceProcess, consume_until, publish_events, python_env, registration_env

pytestmark = pytest.mark.e2e


def _lindungi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lindungi", *args],
        cwd=ROOT,
        env=python_env({**env, "COLUMNS": "200"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(300)
async def test_a_finance_office_declares_lists_and_approves_from_the_command_line(
    tmp_path: Path, service_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> None:
    seed = tmp_path / "partners.json"
    seed.write_text(json.dumps(PARTNERS))
    service = ServiceProcess("registration", registration_env(service_env, unique, seed), tmp_path / "reg.log")
    cli = {
        "PATH": "/usr/bin:/bin",
        "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LINDUNGI_REGISTRATION_URL": "",
        "LINDUNGI_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "LINDUNGI_BUDGET_TOPIC": f"budget.{unique}",
        "LINDUNGI_PARTNER_TOPIC_PREFIX": f"partner-{unique}.",
    }
    each = sum(commitment(enrollment("x", 1).data, START, TODAY.year).values())
    year = str(TODAY.year)
    try:
        service.start()
        await service.wait_ready()
        cli["LINDUNGI_REGISTRATION_URL"] = service.url
        budget = ["budget", "set", "-p", FINANCE, "--region", "32.71", "--year", year, "--dprd", "Perda 5"]
        done = await asyncio.to_thread(_lindungi, cli, *budget, "--amount", str(each))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "version 1" in done.stdout

        # Not its region: refused with the reason, exit code 2.
        elsewhere = [
            "budget",
            "set",
            "-p",
            FINANCE,
            "--region",
            "32.01",
            "--year",
            year,
            "--dprd",
            "x",
            "--amount",
            "1",
        ]
        refused = await asyncio.to_thread(_lindungi, cli, *elsewhere)
        assert refused.returncode == 2
        assert "PARTNER_BUDGET_NOT_ALLOWED" in refused.stdout

        requests = f"requests.{unique}"
        await publish_events(
            kafka_bootstrap, requests, [(e.data.worker.nik, e) for e in (enrollment("e-1", 1), enrollment("e-2", 2))]
        )
        await consume_until(kafka_bootstrap, f"outcomes.{unique}", lambda rs: len(rs) >= 2, timeout=60)

        listed = await asyncio.to_thread(_lindungi, cli, "holds", "list", "--region", "32.71")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        held = next(f"{SENDER}:e-{n}" for n in (1, 2) if f"{SENDER}:e-{n}" in listed.stdout)
        assert "BUDGET_EXHAUSTED" in listed.stdout

        shown = await asyncio.to_thread(_lindungi, cli, "budget", "show", "--region", "32.71")
        assert shown.returncode == 0
        assert f"32.71 {year} APBD" in shown.stdout
        assert "1 (Rp" in shown.stdout  # one hold waiting, with its amount

        # The sender cannot approve its own; the finance office can, after raising the allocation (APBD-P).
        own = await asyncio.to_thread(_lindungi, cli, "holds", "approve", held, "-p", SENDER)
        assert own.returncode == 2
        assert "HOLD_SELF_DECISION" in own.stdout
        raised = await asyncio.to_thread(_lindungi, cli, *budget, "--amount", str(2 * each))
        assert "version 2" in raised.stdout
        approved = await asyncio.to_thread(_lindungi, cli, "holds", "approve", held, "-p", FINANCE, "--note", "APBD-P")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        records = await consume_until(
            kafka_bootstrap, f"outcomes.{unique}", lambda rs: _registered(rs) == 2, timeout=60
        )
        assert _registered(records) == 2
    finally:
        service.stop()


def _registered(records: list[Any]) -> int:
    return sum(isinstance(ev.outcome_adapter.validate_json(r.value), ev.ParticipantRegistered) for r in records)
