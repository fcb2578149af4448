"""The partner's path end to end: `lindungi generate` and `lindungi publish` against a running registration."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lindungi.files import CONTRIBUTION_COLUMNS
from shared import events as ev
from tests.support import ROOT, ServiceProcess, consume_until

pytestmark = pytest.mark.e2e

PARTNER = {
    "partner_id": "cli-test",
    "name": "CLI test partner",
    "regions": ["32", "31"],
    "segments": ["PU", "BPU", "JAKON", "PMI"],
    "funding_sources": ["SELF", "EMPLOYER", "APBD", "APBN", "APBDES", "CSR", "ZAKAT"],
}


@pytest.fixture
def cli_env(tmp_path: Path, service_env: dict[str, str], unique: str) -> Iterator[dict[str, str]]:
    seed = tmp_path / "partners.json"
    seed.write_text(json.dumps([PARTNER]))
    topics = {
        "REGISTRATION_REQUESTS_TOPIC": f"cli.requests.{unique}",
        "REGISTRATION_OUTCOMES_TOPIC": f"cli.outcomes.{unique}",
        "REGISTRATION_DEAD_LETTERS_TOPIC": f"cli.deadletters.{unique}",
    }
    env = {
        **service_env,
        **topics,
        "REGISTRATION_GROUP_ID": f"cli-{unique}",
        "REGISTRATION_MONGODB_DATABASE": f"cli_{unique}",
        "REGISTRATION_PARTNERS_SEED_FILE": str(seed),
        # The CLI publishes on the partner's own topic, which registration forwards to its intake topic.
        "LINDUNGI_PARTNER_TOPIC_PREFIX": f"cli.partner.{unique}.",
        "LINDUNGI_OUTCOMES_TOPIC": topics["REGISTRATION_OUTCOMES_TOPIC"],
        "LINDUNGI_DEAD_LETTERS_TOPIC": topics["REGISTRATION_DEAD_LETTERS_TOPIC"],
    }
    service = ServiceProcess("registration", env, tmp_path / "registration.log")
    service.start()
    try:
        yield {**env, "LINDUNGI_REGISTRATION_URL": service.url}
    finally:
        service.stop()


def lindungi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lindungi", *args], cwd=ROOT, env={**env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_publish_a_generated_file_and_get_a_correct_results_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    count = int(os.environ.get("LINDUNGI_CLI_TEST_ROWS", "2000"))  # the 10,000: set it to 10000
    requests = tmp_path / "requests.csv"
    generated = lindungi(cli_env, "generate", "--out", str(requests), "--count", str(count), "--seed", "7",
                         "--regions", "32.71,31.74", "--invalid-share", "0.1", "--duplicate-share", "0.02")  # fmt: skip
    assert generated.returncode == 0, generated.stderr

    published = lindungi(cli_env, "publish", str(requests), "--partner", "cli-test", "--timeout", "400")
    assert published.returncode == 0, published.stdout + published.stderr

    with requests.open() as handle:
        expected = {row["request_id"]: row["expected"] for row in csv.DictReader(handle)}
    with (tmp_path / "requests.results.csv").open() as handle:
        results = list(csv.DictReader(handle))
    assert len(results) == count
    for row in results:
        label = expected[row["request_id"]]
        if label in {"", "DUPLICATE"}:
            assert row["outcome"] == "REGISTERED", row
        else:
            assert row["outcome"] == "REJECTED", row
            assert set(label.split()) <= set(row["reason_codes"].split()), row
            assert row["messages"], row
    assert_the_amounts_are_the_outcome_events(cli_env, results)


def assert_the_amounts_are_the_outcome_events(env: dict[str, str], results: list[dict[str, str]]) -> None:
    """Every accepted row carries its outcome event's contribution; a rejected row carries none."""
    assert tuple(results[0])[6 : 6 + len(CONTRIBUTION_COLUMNS)] == CONTRIBUTION_COLUMNS
    answers = len({row["request_id"] for row in results})  # one outcome per request, re-sent ones included
    records = asyncio.run(
        consume_until(
            env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"], env["LINDUNGI_OUTCOMES_TOPIC"], lambda r: len(r) >= answers
        )
    )
    outcomes = {o.id: o for o in (ev.outcome_adapter.validate_json(r.value) for r in records)}
    accepted = [row for row in results if row["outcome"] == "REGISTERED"]
    assert accepted
    for row in accepted:
        outcome = outcomes[row["event_id"]]
        assert isinstance(outcome, ev.ParticipantRegistered), row
        participant = outcome.data.participant
        money = participant.contributions
        assert row["funding_source"] == participant.funding_source.value, row
        assert row["contributions_as_of"] == money.as_of.isoformat(), row
        assert [int(row[f"contribution_{p.value}"]) for p in ev.Program] == [
            money.by_program.get(p, 0) for p in ev.Program
        ], row
        paid = [int(row[f"paid_by_{p.value.lower()}"]) for p in ev.Payer]
        assert paid == [money.by_payer.get(p, 0) for p in ev.Payer], row
        assert sum(paid) == int(row["total_monthly"]) == money.total, row
    for row in results:
        if row["outcome"] == "REJECTED":
            assert all(row[column] == "" for column in CONTRIBUTION_COLUMNS), row


def test_a_bad_file_is_refused_with_row_numbers_and_nothing_published(cli_env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("request_id,full_name\nr1,Siti\n")
    result = lindungi(cli_env, "publish", str(missing), "--partner", "cli-test", "--timeout", "5")
    assert result.returncode == 2
    assert "missing column" in result.stdout
    assert "nik" in result.stdout
    assert "nothing was published" in result.stdout

    wrong = tmp_path / "wrong.csv"
    wrong.write_text(
        "request_id,nik,full_name,birth_date,sex,region_code,segment,category,programs,declared_income,"
        "funding_source,coverage_start\n"
        "r1,3271014506900001,Siti,1990-06-05,F,32.71,BPU,VULNERABLE,JKK JKM,1000000,APBD,2026-12-01\n"
        "r2,3271014506900002,Ani,not-a-date,F,32.71,BPU,VULNERABLE,JKK JKM,lots,APBD,2026-12-01\n"
    )
    result = lindungi(cli_env, "publish", str(wrong), "--partner", "cli-test", "--timeout", "5")
    assert result.returncode == 2
    assert "row 3" in result.stdout
    assert "birth_date" in result.stdout
    assert "declared_income" in result.stdout
    assert "row 2" not in result.stdout
    assert "nothing was published" in result.stdout
