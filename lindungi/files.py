"""Partner request files: CSV or Excel rows <-> request events, and the results file.

One row is one request. Columns (header names, any order; blank cells are "not given"):

    request_id, action (ENROLL | UPDATE | TERMINATE | REACTIVATE; default ENROLL),
    nik, full_name, birth_date (YYYY-MM-DD), sex (M | F), phone, email, contact_consent (true/false),
    domicile_kecamatan, region_code, segment, category,
    employer_registration_number, employer_size, jkk_risk,
    programs (e.g. "JKK JKM JHT"), monthly_wage, declared_income, contract_value, contract_months,
    funding_source, coverage_start, reason (TERMINATE), effective_date (UPDATE/TERMINATE/REACTIVATE),
    migrated_from (ENROLL: the system an existing participation is moved from; needs the migration right)

A file is read whole before anything is published: a row that cannot be read stops the publication and
is reported with its row number and what is wrong.

The results file (`write_results`) has one line per input row: first `RESULT_COLUMNS`' outcome columns, then
`CONTRIBUTION_COLUMNS`, the monthly contribution the outcome event states, so a finance office can reconcile
its budget line against the file (docs/partners.md, "The results file"), then `PAST_COLUMNS`: for a migration,
how many past months registration priced and what they cost in all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared import events as ev

REQUIRED = {"request_id", "nik"}
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


def _rows(path: Path) -> Iterator[dict[str, str]]:
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook  # noqa: PLC0415 - only for Excel files

        sheet = load_workbook(path, read_only=True, data_only=True).active
        if sheet is None:
            return
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        for values in rows:
            yield {h: "" if v is None else str(v).strip() for h, v in zip(header, values, strict=False) if h}
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            yield {k.strip(): (v or "").strip() for k, v in row.items() if k}


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


def read_requests(path: Path, partner_id: str) -> list[Row]:  # noqa: C901 - one pass, checks in reading order
    """Every row as a request event, or FileError naming every row that cannot be read."""
    if not path.exists():
        raise FileError([f"{path}: no such file"])
    problems: list[str] = []
    rows: list[Row] = []
    seen: dict[str, Row] = {}
    try:
        for index, cells in enumerate(_rows(path), start=2):
            if index == 2:
                missing = REQUIRED - cells.keys()
                if missing:
                    raise FileError([f"missing column(s): {', '.join(sorted(missing))}"])
            if not any(cells.values()):
                continue
            try:
                event, key = _event(cells, partner_id)
            except ValidationError as error:
                for e in error.errors(include_url=False, include_input=False):
                    where = ".".join(str(p) for p in e["loc"] if p != "data")
                    problems.append(f"row {index}: {where}: {e['msg']}")
                continue
            except (KeyError, ValueError) as error:
                problems.append(f"row {index}: {error}")
                continue
            request_id = event.data.request_id
            if request_id in seen and seen[request_id].event.data != event.data:
                # The same request sent twice is harmless (it is answered once); two different requests
                # under one id would make the second one a silent replay of the first.
                problems.append(f"row {index}: request_id {request_id} is used by row {seen[request_id].number}")
            row = Row(index, event, key)
            seen.setdefault(request_id, row)
            rows.append(row)
    except (csv.Error, UnicodeDecodeError, OSError) as error:
        raise FileError([f"{path}: cannot be read: {error}"]) from error
    if problems:
        raise FileError(problems)
    if not rows:
        raise FileError([f"{path}: no requests"])
    return rows


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
    if isinstance(outcome, ev.RequestRejected):
        codes = " ".join(r.code for r in outcome.data.reasons)
        messages = " | ".join(r.message_id for r in outcome.data.reasons)
        return [row.number, request_id, kind, codes, messages, outcome.id, *_NO_CONTRIBUTION]
    data = outcome.data
    past: tuple[Cell, Cell] = ("", "")
    if isinstance(data, ev.Registered) and data.participant.migrated_from:
        past = (sum(p.months for p in data.past_contributions), data.past_contributions_total)
    return [row.number, request_id, kind, "", "", outcome.id, *contribution_cells(data.participant), *past]


def write_results(path: Path, rows: list[Row], outcomes: Mapping[str, ev.Outcome]) -> None:
    """One line per input row (`result_row`), under the `RESULT_COLUMNS` header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        writer.writerows(result_row(row, outcomes.get(row.event.data.request_id)) for row in rows)
