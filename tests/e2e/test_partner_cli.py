"""The partner's path end to end: `lindungi generate` and `lindungi publish` against a running registration.

Malformed files (wrong encodings, spreadsheet formulas, merged cells, empty sheets, wrong headers, a million
rows with one bad row at the end) are generated here; each must be refused with the row (and the column where
one is to blame) named, and nothing may reach the broker: the partner's topic and the intake topic stay empty.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from openpyxl import Workbook

from lindungi.files import CONTRIBUTION_COLUMNS, check_requests
from shared import events as ev
from shared.topics import partner_requests_topic
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
        "REGISTRATION_BUDGET_TOPIC": f"cli.budget.{unique}",
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


# --- Malformed files ------------------------------------------------------------------------------------------

HEADER = (
    "request_id,nik,full_name,birth_date,sex,phone,region_code,segment,category,programs,declared_income,"
    "funding_source,coverage_start"
)


# CSV injection, as OWASP lists it: a cell leading with = + - @ that a spreadsheet would run.
FORMULAS = ["=cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"]


def good(n: int, name: str = "Siti", phone: str = "+6281234567890") -> str:
    """A row that reads as a request (its business rules are registration's to judge, not the file's)."""
    return f"r{n},3271014506900001,{name},1990-06-05,F,{phone},32.71,BPU,VULNERABLE,JKK JKM,1000000,APBD,2026-12-01"


def excel(path: Path, rows: Sequence[Sequence[object]], *, merge: str | None = None) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    book.save(path)
    return path


def cells(n: int, name: object = "Siti") -> list[object]:
    values: list[object] = [*next(csv.reader([good(n)]))]
    values[2] = name
    return values


def malformed(tmp: Path) -> list[tuple[str, Path, list[str]]]:
    """(what, the file, what its refusal must say)."""

    def text(name: str, body: str, encoding: str = "utf-8") -> Path:
        path = tmp / name
        path.write_bytes(body.encode(encoding))
        return path

    header = HEADER.split(",")
    return [
        ("UTF-16", text("utf16.csv", f"{HEADER}\n{good(1)}\n", "utf-16"), ["row 1", "UTF-16"]),
        (
            "latin-1 bytes that are not UTF-8",
            text("latin1.csv", f"{HEADER}\n{good(1)}\n{good(2, 'Sité Rahayu')}\n", "latin-1"),
            ["row 3, column full_name", "not UTF-8"],
        ),
        *(
            (
                f"a formula leading with {formula[0]}",
                text(f"f{i}.csv", f"{HEADER}\n{good(1)}\n{good(2, formula)}\n"),
                ["row 3, column full_name", "formula"],
            )
            for i, formula in enumerate(FORMULAS)
        ),
        (
            "a formula in a phone cell",
            text("phone.csv", f"{HEADER}\n{good(1, phone='=1+1')}\n"),
            ["row 2, column phone"],
        ),
        ("an empty CSV", text("empty.csv", ""), ["row 1", "empty"]),
        ("a header row and no requests", text("header.csv", f"{HEADER}\n"), ["no requests"]),
        (
            "an unknown column",
            text("unknown.csv", HEADER.replace("full_name", "nama") + f"\n{good(1)}\n"),
            ["row 1, column 3", "unknown column 'nama'"],
        ),
        ("a column twice", text("twice.csv", HEADER + ",nik\n" + good(1) + ",1\n"), ["row 1, column 14", "twice"]),
        ("more cells than columns", text("wide.csv", f"{HEADER}\n{good(1)}\n{good(2)},x,y\n"), ["row 3", "cells"]),
        ("merged cells", excel(tmp / "merged.xlsx", [header, cells(1), cells(2)], merge="C2:D3"), ["row 2", "C2:D3"]),
        ("an empty sheet", excel(tmp / "empty.xlsx", []), ["row 1", "empty"]),
        (
            "an Excel formula",
            excel(tmp / "formula.xlsx", [header, cells(1), cells(2, '=HYPERLINK("http://x","klik")')]),
            ["row 3, column full_name", "formula"],
        ),
        ("a file that is no workbook", text("fake.xlsx", f"{HEADER}\n{good(1)}\n"), ["not an Excel workbook"]),
    ]


async def _published(env: dict[str, str], partner: str) -> int:
    """Records on the partner's topic and on the intake topic: what a refused file must have left at 0."""
    topics = [partner_requests_topic(partner, env["LINDUNGI_PARTNER_TOPIC_PREFIX"]), env["REGISTRATION_REQUESTS_TOPIC"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"], group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()


def test_malformed_files_are_refused_naming_the_row_and_nothing_is_published(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    failures = []
    for what, path, expected in malformed(tmp_path):
        result = lindungi(cli_env, "publish", str(path), "--partner", "cli-test", "--timeout", "5")
        said = " ".join(result.stdout.split())  # rich wraps long lines
        if result.returncode != 2 or "nothing was published" not in said or not all(e in said for e in expected):
            failures.append(f"{what}: exit {result.returncode}, expected {expected}:\n{result.stdout[-800:]}")
    assert failures == [], "\n".join(failures)
    assert asyncio.run(_published(cli_env, "cli-test")) == 0


def test_what_is_data_and_not_a_formula_or_bad_text_is_read(tmp_path: Path) -> None:
    """A phone number with +, a BOM, an Excel date cell: a file a partner's office would save, read as it is."""
    bom = tmp_path / "bom.csv"
    bom.write_bytes(f"{HEADER}\n{good(1)}\n{good(2, 'Sité Rahayu')}\n".encode("utf-8-sig"))
    assert check_requests(bom, "cli-test") == 2
    dated: list[Sequence[object]] = [
        HEADER.split(","),
        [
            *cells(1)[:3],
            datetime(1990, 6, 5),  # noqa: DTZ001 - what Excel stores: a naive date-time
            *cells(1)[4:],
        ],
    ]
    assert check_requests(excel(tmp_path / "dated.xlsx", dated), "cli-test") == 1


MILLION = int(os.environ.get("LINDUNGI_CLI_BIG_ROWS", "1000000"))
RSS_BOUND_MB = 600  # measured: about 170 MB for the million-row check (a fingerprint per request id)


def test_a_million_rows_with_one_bad_row_at_the_end_publish_nothing_in_bounded_memory(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "million.csv"
    with path.open("w") as handle:
        handle.write(f"{HEADER}\n")
        handle.writelines(f"{good(n)}\n" for n in range(1, MILLION))
        handle.write(f"{good(MILLION, '=cmd|calc')}\n")  # row MILLION + 1: the header is row 1

    result = lindungi(cli_env, "publish", str(path), "--partner", "cli-test", "--timeout", "5")
    # Every child waited for so far counts: the largest of them is this one (the service is still running).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    said = " ".join(result.stdout.split())
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"row {MILLION + 1}, column full_name" in said
    assert "nothing was published" in said
    assert asyncio.run(_published(cli_env, "cli-test")) == 0
    print(f"{MILLION} rows checked; the publish command's peak RSS: {peak_mb:.0f} MB")  # noqa: T201
    assert peak_mb < RSS_BOUND_MB
