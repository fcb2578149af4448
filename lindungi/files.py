"""Partner request files: CSV or Excel rows <-> request events, and the results file.

One row is one request. Columns (header names, any order; blank cells are "not given"):

    request_id, action (ENROLL | UPDATE | TERMINATE | REACTIVATE; default ENROLL),
    nik, full_name, birth_date (YYYY-MM-DD), sex (M | F), phone, email, contact_consent (true/false),
    domicile_kecamatan, region_code, segment, category,
    employer_registration_number, employer_size, jkk_risk,
    programs (e.g. "JKK JKM JHT"), monthly_wage, declared_income, contract_value, contract_months,
    funding_source, coverage_start, reason (TERMINATE), effective_date (UPDATE/TERMINATE/REACTIVATE),
    migrated_from (ENROLL: the system an existing participation is moved from; needs the migration right)

A file is checked whole before anything is published (`check_requests`): a row that cannot be read stops the
publication and is reported with its row number, its column where one is to blame, and what is wrong. The
check streams (a million rows are read one at a time; what it keeps is a small fingerprint per request id),
and so does publishing, which reads the file again (`iter_requests`). Refused: a file in UTF-16 or with text
that is not UTF-8 (latin-1), a cell a spreadsheet would run as a formula (CSV injection: `=`, `+`, `-`, `@`
leading a cell that is not a number), merged cells in an Excel sheet, an empty file, an unknown, duplicated
or missing column. Excel date cells are read as dates.

The results file (`write_results`) has one line per input row: first `RESULT_COLUMNS`' outcome columns, then
`CONTRIBUTION_COLUMNS`, the monthly contribution the outcome event states, so a finance office can reconcile
its budget line against the file (docs/partners.md, "The results file"), then `PAST_COLUMNS`: for a migration,
how many past months registration priced and what they cost in all.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared import events as ev

REQUIRED = {"request_id", "nik"}
MAX_PROBLEMS = 200  # reported in full; more are counted
FORMULA_STARTS = ("=", "+", "-", "@")
_NUMBER = re.compile(r"[+-]?[0-9][0-9 .]*")
COLUMNS = (
    "request_id", "action", "nik", "full_name", "birth_date", "sex", "phone", "email", "contact_consent",
    "domicile_kecamatan", "region_code", "segment", "category", "employer_registration_number",
    "employer_size", "jkk_risk", "programs", "monthly_wage", "declared_income", "contract_value",
    "contract_months", "funding_source", "coverage_start", "reason", "effective_date", "migrated_from",
)  # fmt: skip
# One column per program and per payer, in the vocabulary's order, every one always present: a spreadsheet
# formula keeps pointing at the same column whatever the file holds. Amounts are whole Rupiah exactly as the
# outcome event states them (no rounding, no thousands separators), so the per-program columns and the
# per-payer columns each add up to `total_monthly`, as they do in the event.
CONTRIBUTION_COLUMNS = (
    "funding_source",
    "contributions_as_of",
    *(f"contribution_{program.value}" for program in ev.Program),
    *(f"paid_by_{payer.value.lower()}" for payer in ev.Payer),
    "total_monthly",
)
# A migration's months before registration, each priced with the rates of its month (the outcome event lists
# them period by period): how many, and their sum in Rupiah.
PAST_COLUMNS = ("past_months", "past_contributions_total")
# The first six columns are the ones results files have always had: readers that know only them keep working.
RESULT_COLUMNS = (
    "row", "request_id", "outcome", "reason_codes", "messages", "event_id", *CONTRIBUTION_COLUMNS, *PAST_COLUMNS,
)  # fmt: skip
# Columns a file may carry beside the request's: `expected`, the label `lindungi generate` writes for tests.
KNOWN_COLUMNS = frozenset({*COLUMNS, "expected"})
_NO_CONTRIBUTION = ("",) * (len(CONTRIBUTION_COLUMNS) + len(PAST_COLUMNS))

Cell = str | int


class FileError(Exception):
    """The file cannot be published; `problems` names each row and what is wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    event: ev.CloudEvent[Any]
    key: str


@dataclass
class _Problems:
    """The problems found so far: the first `MAX_PROBLEMS` in full, the rest counted (a file of a million bad
    rows must not hold a million messages)."""

    found: list[str] = field(default_factory=list)
    more: int = 0

    def add(self, problem: str) -> None:
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(problem)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.found)

    def all(self) -> list[str]:
        return [*self.found, *([f"... and {self.more} more problems"] if self.more else [])]


def _csv_table(path: Path) -> Iterator[list[str]]:
    """The CSV file's rows of cells. UTF-8 with or without a byte-order mark; a wide encoding (UTF-16, what
    Excel's "Unicode text" writes) is refused as a whole, bytes that are not UTF-8 (latin-1, Windows-1252)
    come through as U+FFFD, for the row's check to name their row and column."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        raise FileError([f'row 1: {path.name} is UTF-16 text, not UTF-8: save it as "CSV UTF-8" and publish again'])
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        yield from csv.reader(handle)


def _excel_table(path: Path) -> Iterator[list[str]]:
    """The active sheet's rows of cells, read as a stream. Formulas come as their text (`=...`), not their
    last computed value, so that the row's check refuses them; merged cells refuse the file."""
    from openpyxl import load_workbook  # noqa: PLC0415 - only for Excel files

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        raise FileError([f"{path.name} is not an Excel workbook (.xlsx) openpyxl can read: {error}"]) from error
    try:
        sheet = book.active
        if sheet is None:
            raise FileError([f"row 1: {path.name} has no sheet"])
        merged = _merged_cells(book, sheet)
        if merged:
            raise FileError(
                [
                    f"row {_first_row(ref)}: cells {ref} are merged; unmerge them so that every row holds its own "
                    f"values (sheet {sheet.title!r})"
                    for ref in merged[:MAX_PROBLEMS]
                ]
            )
        for values in sheet.iter_rows(values_only=True):
            yield [_excel_text(v) for v in values]
    finally:
        book.close()


def _excel_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime) and value.time() == time():
        return value.date().isoformat()  # a date cell: Excel keeps dates as date-times
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _merged_cells(book: Any, sheet: Any) -> list[str]:
    """The merged ranges of a read-only sheet (openpyxl lists them only for a sheet loaded whole): the
    `<mergeCells>` element after the rows in the sheet's XML, found by reading it in chunks."""
    pattern = re.compile(rb'<(?:\w+:)?mergeCell ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
    tail = b""
    found: list[str] = []
    with book._archive.open(sheet._worksheet_path) as xml:  # noqa: SLF001 - see the docstring
        while chunk := xml.read(1 << 20):
            window = tail + chunk
            found += [m.decode() for m in pattern.findall(window)]
            tail = window[-200:]
            # A match across the chunk boundary is found again whole in the next window: drop the repeat.
            found = list(dict.fromkeys(found))
    return found


def _first_row(ref: str) -> str:
    return "".join(c for c in ref.split(":", maxsplit=1)[0] if c.isdigit())


def _formula(value: str) -> bool:
    """A cell a spreadsheet would run (CSV injection: `=cmd|' /C calc'!A0`, `@SUM(...)`, `+1+cmd`): it starts
    with = + - @; a number (`+6281...`, `-5`) is data, not a formula."""
    return value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value)


def _records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, cells by column) after the header row is checked; whole-file problems raise FileError."""
    excel = path.suffix.lower() in {".xlsx", ".xlsm"}
    table = _excel_table(path) if excel else _csv_table(path)
    first = next(table, None)
    if first is None or not any(c.strip() for c in first):
        raise FileError(
            [f"row 1: {path.name} is empty; row 1 must name the columns ({', '.join(sorted(REQUIRED))}, ...)"]
        )
    header = [c.strip().lower() for c in first]
    _check_header(header)
    for number, values in enumerate(table, start=2):
        if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
            yield number, {"": f"{len(values)} cells, but row 1 names {len(header)} columns"}
            continue
        yield number, {h: v.strip() for h, v in zip(header, values, strict=False) if h}


def _check_header(header: list[str]) -> None:
    problems = []
    for index, name in enumerate(header, start=1):
        if name and name not in KNOWN_COLUMNS:
            problems.append(f"row 1, column {index}: unknown column {name[:40]!r} (the columns: {', '.join(COLUMNS)})")
        elif name and header.index(name) != index - 1:
            problems.append(f"row 1, column {index}: column {name!r} appears twice")
    missing = REQUIRED - set(header)
    if missing:
        problems.append(f"row 1: missing column(s): {', '.join(sorted(missing))}")
    if problems:
        raise FileError(problems)


def _cell_problems(number: int, cells: dict[str, str]) -> list[str]:
    """What is wrong with a row's cells before they are read as a request: text and formulas."""
    if "" in cells:
        return [f"row {number}: {cells['']}"]
    found = []
    for column, value in cells.items():
        if "\ufffd" in value:
            found.append(f'row {number}, column {column}: not UTF-8 text (latin-1?); save the file as "CSV UTF-8"')
        elif _formula(value):
            found.append(f"row {number}, column {column}: {value[:30]!r} is a spreadsheet formula, not a value")
    return found


def _flag(value: str) -> bool:
    return value.lower() in {"1", "true", "yes", "ya", "y"}


def _event(cells: dict[str, str], partner_id: str) -> tuple[ev.CloudEvent[Any], str]:
    given = {k: v for k, v in cells.items() if v != ""}
    action = given.get("action", "ENROLL").upper()
    programs = given["programs"].replace(",", " ").replace(";", " ").split() if "programs" in given else None
    source = f"partner/{partner_id}"
    request_id = given["request_id"]
    if action == "ENROLL":
        employer = None
        if "employer_registration_number" in given:
            employer = {
                "registration_number": given["employer_registration_number"],
                "size": given.get("employer_size", "SMALL"),
                "jkk_risk": given.get("jkk_risk", "VERY_LOW"),
            }
        data: dict[str, Any] = {
            "request_id": request_id,
            "worker": {
                "nik": given["nik"],
                "full_name": given.get("full_name"),
                "birth_date": given.get("birth_date"),
                "sex": given.get("sex"),
                "phone": given.get("phone"),
                "email": given.get("email"),
                "contact_consent": _flag(given.get("contact_consent", "")),
                "domicile_kecamatan": given.get("domicile_kecamatan"),
            },
            "region_code": given.get("region_code"),
            "segment": given.get("segment"),
            "category": given.get("category"),
            "employer": employer,
            "programs": programs,
            "funding_source": given.get("funding_source"),
            "coverage_start": given.get("coverage_start"),
            **{
                k: given[k]
                for k in ("monthly_wage", "declared_income", "contract_value", "contract_months", "migrated_from")
                if k in given
            },
        }
        return ev.EnrollmentRequested(source=source, subject=request_id, data=data), given["nik"]
    common = {"request_id": request_id, "nik": given["nik"], "segment": given.get("segment"),
              "effective_date": given.get("effective_date")}  # fmt: skip
    if action == "UPDATE":
        update = {
            **common,
            "programs": programs,
            "phone": given.get("phone"),
            "email": given.get("email"),
            "contact_consent": _flag(given["contact_consent"]) if "contact_consent" in given else None,
            **{k: given[k] for k in ("monthly_wage", "declared_income") if k in given},
        }
        return ev.UpdateRequested(source=source, subject=request_id, data=update), given["nik"]
    if action == "TERMINATE":
        data = {**common, "reason": given.get("reason")}
        return ev.TerminationRequested(source=source, subject=request_id, data=data), given["nik"]
    if action == "REACTIVATE":
        return ev.ReactivationRequested(source=source, subject=request_id, data=common), given["nik"]
    raise ValueError(f"action must be ENROLL, UPDATE, TERMINATE or REACTIVATE, not {action!r}")


def _rows(path: Path, partner_id: str, problems: _Problems) -> Iterator[Row]:
    """Every readable row as a request event, one at a time; what is wrong goes to `problems`."""
    if not path.exists():
        raise FileError([f"{path}: no such file"])
    try:
        for number, cells in _records(path):
            if not any(cells.values()):
                continue
            wrong = _cell_problems(number, cells)
            if wrong:
                for problem in wrong:
                    problems.add(problem)
                continue
            try:
                event, key = _event(cells, partner_id)
            except ValidationError as error:
                for e in error.errors(include_url=False, include_input=False):
                    where = ".".join(str(p) for p in e["loc"] if p != "data")
                    problems.add(f"row {number}: {where}: {e['msg']}")
                continue
            except (KeyError, ValueError) as error:
                problems.add(f"row {number}: {error}")
                continue
            yield Row(number, event, key)
    except (csv.Error, OSError) as error:
        raise FileError([f"{path}: cannot be read: {error}"]) from error


def check_requests(path: Path, partner_id: str) -> int:
    """Read the whole file, one row at a time, and return how many requests it holds; FileError names every
    row that cannot be read (the first `MAX_PROBLEMS`). Memory: a fingerprint per request id, not the rows."""
    problems = _Problems()
    seen: dict[str, int] = {}  # request id -> the row that first used it, and a digest of its request
    count = 0
    for row in _rows(path, partner_id, problems):
        count += 1
        request_id = row.event.data.request_id
        digest = int.from_bytes(hashlib.blake2b(row.event.data.model_dump_json().encode(), digest_size=6).digest())
        first = seen.setdefault(request_id, digest << 32 | row.number)
        if first >> 32 != digest:
            # The same request sent twice is harmless (it is answered once); two different requests
            # under one id would make the second one a silent replay of the first.
            problems.add(f"row {row.number}: request_id {request_id} is used by row {first & 0xFFFFFFFF}")
    if problems:
        raise FileError(problems.all())
    if not count:
        raise FileError([f"{path}: no requests (only the header row)"])
    return count


def iter_requests(path: Path, partner_id: str) -> Iterator[Row]:
    """The rows of a file `check_requests` accepted, read again one at a time (to publish a large file without
    holding it)."""
    return _rows(path, partner_id, _Problems())


def read_requests(path: Path, partner_id: str) -> list[Row]:
    """Every row as a request event, or FileError naming every row that cannot be read."""
    check_requests(path, partner_id)
    return list(iter_requests(path, partner_id))


def contribution_cells(participant: ev.Participant) -> tuple[Cell, ...]:
    """The participation's monthly contribution as `CONTRIBUTION_COLUMNS` cells; a program or payer the
    event leaves out pays nothing, so its cell is 0."""
    money = participant.contributions
    return (
        participant.funding_source.value,
        money.as_of.isoformat(),
        *(money.by_program.get(program, 0) for program in ev.Program),
        *(money.by_payer.get(payer, 0) for payer in ev.Payer),
        money.total,
    )


def result_row(row: Row, outcome: ev.Outcome | None) -> list[Cell]:
    """One results line: the outcome, every reason code and its message, and the contribution decided.

    Contribution cells are empty when no participation stands behind the line (rejected, or no outcome yet).
    A terminated participation's line shows the contribution that stops, as its outcome event does.
    """
    request_id = row.event.data.request_id
    if outcome is None:
        return [row.number, request_id, "PENDING", "", "", "", *_NO_CONTRIBUTION]
    kind = outcome.type.rsplit(".", 1)[-1].upper()
    if isinstance(outcome, ev.RequestRejected | ev.RequestHeld):
        # Held over the budget: no participation yet; the finance office's verdict decides it (docs/budgets.md).
        codes = " ".join(r.code for r in outcome.data.reasons)
        messages = " | ".join(r.message_id for r in outcome.data.reasons)
        return [row.number, request_id, kind, codes, messages, outcome.id, *_NO_CONTRIBUTION]
    if isinstance(outcome, ev.HoldDecidedEvent):
        return [row.number, request_id, kind, "", "", outcome.id, *_NO_CONTRIBUTION]
    data = outcome.data
    past: tuple[Cell, Cell] = ("", "")
    if isinstance(data, ev.Registered) and data.participant.migrated_from:
        past = (sum(p.months for p in data.past_contributions), data.past_contributions_total)
    return [row.number, request_id, kind, "", "", outcome.id, *contribution_cells(data.participant), *past]


def write_results(path: Path, rows: Iterable[Row], outcomes: Mapping[str, ev.Outcome]) -> None:
    """One line per input row (`result_row`), under the `RESULT_COLUMNS` header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        writer.writerows(result_row(row, outcomes.get(row.event.data.request_id)) for row in rows)
