"""Rejection reason codes: the stable vocabulary of why a request was refused or flagged.

A code is part of the contract with partners: once published it keeps its name and meaning, and a new rule
gets a new code. Every code has a message in Bahasa Indonesia (the language partners and workers read) and in
English, and the request field it usually points at. Most codes reject a request; a few are warnings that
registration records beside an accepted request (`Severity.WARNING`).

`docs/reason-codes.md` is generated from this module (`python -m shared.reasons`); a test keeps it current.

A detail attached to a reason is language-neutral (program codes, amounts, dates) so that both messages can
carry it, and it is scrubbed of anything NIK-shaped: a rejection reaches notifications and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from shared.events import RejectionReason
from shared.privacy import scrub


class Severity(StrEnum):
    REJECTION = "rejection"  # the request is refused
    WARNING = "warning"  # the request goes through; the finding is recorded


class ReasonCode(StrEnum):
    """Why a request was refused (or, for the few warnings, what registration noticed)."""

    # The NIK itself (Nomor Induk Kependudukan, `PP KK CC DDMMYY SSSS`).
    NIK_LENGTH = "NIK_LENGTH"
    NIK_NOT_DIGITS = "NIK_NOT_DIGITS"
    NIK_BIRTH_DATE_INVALID = "NIK_BIRTH_DATE_INVALID"
    NIK_SERIAL_ZERO = "NIK_SERIAL_ZERO"
    NIK_REGION_UNKNOWN = "NIK_REGION_UNKNOWN"
    # The NIK against what the request states.
    NIK_BIRTH_DATE_MISMATCH = "NIK_BIRTH_DATE_MISMATCH"
    NIK_SEX_MISMATCH = "NIK_SEX_MISMATCH"
    # Regions (Kemendagri codes).
    REGION_UNKNOWN = "REGION_UNKNOWN"
    REGION_NOT_REGENCY_CITY = "REGION_NOT_REGENCY_CITY"
    KECAMATAN_UNKNOWN = "KECAMATAN_UNKNOWN"
    KECAMATAN_NOT_IN_REGION = "KECAMATAN_NOT_IN_REGION"
    # Age.
    AGE_BELOW_WORKING = "AGE_BELOW_WORKING"
    AGE_ABOVE_LIMIT = "AGE_ABOVE_LIMIT"
    # Segment, category and programs (Perpres 109/2013 art. 6).
    CATEGORY_NOT_IN_SEGMENT = "CATEGORY_NOT_IN_SEGMENT"
    PROGRAM_NOT_OFFERED = "PROGRAM_NOT_OFFERED"
    PROGRAM_MANDATORY_MISSING = "PROGRAM_MANDATORY_MISSING"
    PROGRAM_DUPLICATE = "PROGRAM_DUPLICATE"
    JKP_PREREQUISITE_MISSING = "JKP_PREREQUISITE_MISSING"
    # The figures a contribution is computed from, and who pays.
    EMPLOYER_MISSING = "EMPLOYER_MISSING"
    WAGE_MISSING = "WAGE_MISSING"
    INCOME_MISSING = "INCOME_MISSING"
    INCOME_BELOW_MINIMUM = "INCOME_BELOW_MINIMUM"
    CONTRACT_VALUE_MISSING = "CONTRACT_VALUE_MISSING"
    CONTRACT_MONTHS_MISSING = "CONTRACT_MONTHS_MISSING"
    FIELD_NOT_APPLICABLE = "FIELD_NOT_APPLICABLE"
    FUNDING_NOT_ALLOWED = "FUNDING_NOT_ALLOWED"
    # Dates.
    COVERAGE_START_INVALID = "COVERAGE_START_INVALID"
    EFFECTIVE_DATE_INVALID = "EFFECTIVE_DATE_INVALID"
    UPDATE_EMPTY = "UPDATE_EMPTY"
    # The participant's state, as the registration service knows it.
    PARTICIPANT_UNKNOWN = "PARTICIPANT_UNKNOWN"
    PARTICIPANT_ALREADY_ACTIVE = "PARTICIPANT_ALREADY_ACTIVE"
    PARTICIPANT_NOT_ACTIVE = "PARTICIPANT_NOT_ACTIVE"
    REQUEST_ID_CONFLICT = "REQUEST_ID_CONFLICT"
    # The partner that sent the request.
    PARTNER_UNKNOWN = "PARTNER_UNKNOWN"
    PARTNER_REGION_NOT_ALLOWED = "PARTNER_REGION_NOT_ALLOWED"
    PARTNER_SEGMENT_NOT_ALLOWED = "PARTNER_SEGMENT_NOT_ALLOWED"
    PARTNER_FUNDING_NOT_ALLOWED = "PARTNER_FUNDING_NOT_ALLOWED"
    # The message on the wire.
    SCHEMA_INVALID = "SCHEMA_INVALID"
    SCHEMA_VERSION_UNSUPPORTED = "SCHEMA_VERSION_UNSUPPORTED"
    EVENT_TYPE_UNKNOWN = "EVENT_TYPE_UNKNOWN"

    @property
    def severity(self) -> Severity:
        return REASONS[self].severity

    @property
    def field(self) -> str | None:
        """The request field (dotted) this code usually points at; a finding may name a more exact one."""
        return REASONS[self].field

    def message(self, lang: str = "id") -> str:
        """The message in Bahasa Indonesia (`id`, the default) or English (`en`)."""
        text = REASONS[self]
        return text.message_en if lang == "en" else text.message_id


@dataclass(frozen=True, slots=True)
class ReasonText:
    field: str | None
    message_id: str
    message_en: str
    severity: Severity = Severity.REJECTION


_R = ReasonCode
_NIK = "worker.nik"

#: Every code with its field, its Indonesian and its English message. A test checks that none is missing.
REASONS: dict[ReasonCode, ReasonText] = {
    _R.NIK_LENGTH: ReasonText(
        _NIK,
        "NIK harus terdiri dari tepat 16 digit.",
        "The NIK must be exactly 16 digits long.",
    ),
    _R.NIK_NOT_DIGITS: ReasonText(
        _NIK,
        "NIK hanya boleh berisi angka.",
        "The NIK may contain digits only.",
    ),
    _R.NIK_BIRTH_DATE_INVALID: ReasonText(
        _NIK,
        "Tanggal lahir di dalam NIK (digit ke-7 sampai ke-12) bukan tanggal yang sah.",
        "The birth date inside the NIK (digits 7 to 12) is not a valid date.",
    ),
    _R.NIK_SERIAL_ZERO: ReasonText(
        _NIK,
        "Nomor urut NIK (4 digit terakhir) tidak boleh 0000.",
        "The NIK serial number (last 4 digits) must not be 0000.",
    ),
    _R.NIK_REGION_UNKNOWN: ReasonText(
        _NIK,
        "Kode wilayah di dalam NIK tidak ada di daftar wilayah saat ini (mungkin karena pemekaran wilayah); "
        "dicatat sebagai peringatan.",
        "The region code inside the NIK is not in the current region list (perhaps after a region split); "
        "recorded as a warning.",
        Severity.WARNING,
    ),
    _R.NIK_BIRTH_DATE_MISMATCH: ReasonText(
        "worker.birth_date",
        "Tanggal lahir tidak sesuai dengan tanggal lahir di dalam NIK.",
        "The birth date does not match the birth date inside the NIK.",
    ),
    _R.NIK_SEX_MISMATCH: ReasonText(
        "worker.sex",
        "Jenis kelamin tidak sesuai dengan NIK (untuk perempuan, tanggal lahir di NIK ditambah 40).",
        "The sex does not match the NIK (for women, the birth day inside the NIK is increased by 40).",
    ),
    _R.REGION_UNKNOWN: ReasonText(
        "region_code",
        "Kode wilayah tidak dikenal.",
        "Unknown region code.",
    ),
    _R.REGION_NOT_REGENCY_CITY: ReasonText(
        "region_code",
        "Kode wilayah harus kode kabupaten/kota (contoh: 32.71).",
        "The region code must be a regency/city code (for example 32.71).",
    ),
    _R.KECAMATAN_UNKNOWN: ReasonText(
        "worker.domicile_kecamatan",
        "Kode kecamatan domisili tidak dikenal.",
        "Unknown domicile kecamatan code.",
    ),
    _R.KECAMATAN_NOT_IN_REGION: ReasonText(
        "worker.domicile_kecamatan",
        "Kecamatan domisili berada di luar kabupaten/kota penanggung jawab; dicatat sebagai peringatan.",
        "The domicile kecamatan lies outside the responsible regency/city; recorded as a warning.",
        Severity.WARNING,
    ),
    _R.AGE_BELOW_WORKING: ReasonText(
        "worker.birth_date",
        "Pekerja belum mencapai usia kerja minimum pada tanggal mulai kepesertaan.",
        "The worker is below the minimum working age on the coverage start date.",
    ),
    _R.AGE_ABOVE_LIMIT: ReasonText(
        "worker.birth_date",
        "Usia pekerja melebihi batas usia kepesertaan atau program yang diminta.",
        "The worker is above the age limit for enrollment or for a requested program.",
    ),
    _R.CATEGORY_NOT_IN_SEGMENT: ReasonText(
        "category",
        "Kategori pekerja tidak termasuk dalam segmen kepesertaan yang dipilih.",
        "The worker category does not belong to the chosen participant segment.",
    ),
    _R.PROGRAM_NOT_OFFERED: ReasonText(
        "programs",
        "Program tidak tersedia untuk segmen ini.",
        "The program is not offered to this segment.",
    ),
    _R.PROGRAM_MANDATORY_MISSING: ReasonText(
        "programs",
        "Program wajib belum dipilih.",
        "A mandatory program is missing.",
    ),
    _R.PROGRAM_DUPLICATE: ReasonText(
        "programs",
        "Program yang sama dicantumkan lebih dari sekali.",
        "The same program is listed more than once.",
    ),
    _R.JKP_PREREQUISITE_MISSING: ReasonText(
        "programs",
        "JKP mensyaratkan kepesertaan JKK, JKM dan JHT (ditambah JP untuk usaha menengah dan besar).",
        "JKP requires enrollment in JKK, JKM and JHT (and JP for medium and large employers).",
    ),
    _R.EMPLOYER_MISSING: ReasonText(
        "employer",
        "Data pemberi kerja wajib diisi untuk segmen ini.",
        "Employer details are required for this segment.",
    ),
    _R.WAGE_MISSING: ReasonText(
        "monthly_wage",
        "Upah sebulan wajib diisi dan lebih dari nol untuk peserta Penerima Upah (PU).",
        "A monthly wage above zero is required for wage earners (PU).",
    ),
    _R.INCOME_MISSING: ReasonText(
        "declared_income",
        "Penghasilan sebulan yang dilaporkan wajib diisi untuk peserta Bukan Penerima Upah (BPU).",
        "A declared monthly income is required for non-wage earners (BPU).",
    ),
    _R.INCOME_BELOW_MINIMUM: ReasonText(
        "declared_income",
        "Penghasilan yang dilaporkan di bawah batas minimum.",
        "The declared income is below the minimum.",
    ),
    _R.CONTRACT_VALUE_MISSING: ReasonText(
        "contract_value",
        "Nilai kontrak proyek wajib diisi dan lebih dari nol untuk peserta Jasa Konstruksi (JAKON).",
        "A project contract value above zero is required for construction workers (JAKON).",
    ),
    _R.CONTRACT_MONTHS_MISSING: ReasonText(
        "contract_months",
        "Jangka waktu perjanjian kerja (bulan) wajib diisi untuk Pekerja Migran Indonesia (PMI).",
        "The placement contract length in months is required for migrant workers (PMI).",
    ),
    _R.FIELD_NOT_APPLICABLE: ReasonText(
        None,
        "Isian ini tidak berlaku untuk segmen ini; kosongkan.",
        "This field does not apply to this segment; leave it out.",
    ),
    _R.FUNDING_NOT_ALLOWED: ReasonText(
        "funding_source",
        "Sumber pendanaan tidak diperbolehkan untuk segmen dan kategori ini.",
        "The funding source is not allowed for this segment and category.",
    ),
    _R.COVERAGE_START_INVALID: ReasonText(
        "coverage_start",
        "Tanggal mulai kepesertaan berada di luar rentang yang diizinkan.",
        "The coverage start date is outside the allowed window.",
    ),
    _R.EFFECTIVE_DATE_INVALID: ReasonText(
        "effective_date",
        "Tanggal berlaku berada di luar rentang yang diizinkan.",
        "The effective date is outside the allowed window.",
    ),
    _R.UPDATE_EMPTY: ReasonText(
        None,
        "Permintaan perubahan tidak berisi perubahan apa pun.",
        "The update request contains no change.",
    ),
    _R.PARTICIPANT_UNKNOWN: ReasonText(
        "nik",
        "Peserta dengan NIK ini di segmen ini tidak ditemukan.",
        "There is no participant with this NIK in this segment.",
    ),
    _R.PARTICIPANT_ALREADY_ACTIVE: ReasonText(
        "nik",
        "Peserta dengan NIK ini sudah aktif di segmen ini.",
        "The participant with this NIK is already active in this segment.",
    ),
    _R.PARTICIPANT_NOT_ACTIVE: ReasonText(
        "nik",
        "Kepesertaan sudah berakhir; ajukan reaktivasi terlebih dahulu.",
        "The participation has ended; reactivate it first.",
    ),
    _R.REQUEST_ID_CONFLICT: ReasonText(
        "request_id",
        "request_id ini sudah dipakai mitra untuk permintaan lain yang isinya berbeda.",
        "This request_id was already used by the partner for a different request.",
    ),
    _R.PARTNER_UNKNOWN: ReasonText(
        None,
        "Mitra pengirim tidak terdaftar.",
        "The sending partner is not registered.",
    ),
    _R.PARTNER_REGION_NOT_ALLOWED: ReasonText(
        "region_code",
        "Mitra tidak berwenang mendaftarkan pekerja di wilayah ini.",
        "The partner may not enroll workers in this region.",
    ),
    _R.PARTNER_SEGMENT_NOT_ALLOWED: ReasonText(
        "segment",
        "Mitra tidak berwenang untuk segmen kepesertaan ini.",
        "The partner may not act for this participant segment.",
    ),
    _R.PARTNER_FUNDING_NOT_ALLOWED: ReasonText(
        "funding_source",
        "Mitra tidak berwenang menggunakan sumber pendanaan ini.",
        "The partner may not use this funding source.",
    ),
    _R.SCHEMA_INVALID: ReasonText(
        None,
        "Isi pesan tidak sesuai dengan skema.",
        "The message does not match the schema.",
    ),
    _R.SCHEMA_VERSION_UNSUPPORTED: ReasonText(
        "schemaversion",
        "Versi skema pesan tidak didukung.",
        "The message schema version is not supported.",
    ),
    _R.EVENT_TYPE_UNKNOWN: ReasonText(
        "type",
        "Jenis pesan tidak dikenal.",
        "Unknown message type.",
    ),
}

#: `MESSAGES[code] == (Indonesian, English)`, for callers that only want the two texts.
MESSAGES: dict[ReasonCode, tuple[str, str]] = {code: (t.message_id, t.message_en) for code, t in REASONS.items()}


def rejection(code: ReasonCode, field: str | None = None, detail: str | None = None) -> RejectionReason:
    """The contract form of a reason: code, field (the code's usual field unless given) and both messages.

    `detail` is appended to both messages in brackets; it is NIK-scrubbed because it ends up in
    notifications and logs.
    """
    text = REASONS[code]
    suffix = f" ({scrub(detail)})" if detail else ""
    return RejectionReason(
        code=code.value,
        field=field if field is not None else text.field,
        message_id=text.message_id + suffix,
        message_en=text.message_en + suffix,
    )


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|")


def markdown_table() -> str:
    """The reason-code reference (docs/reason-codes.md) as Markdown."""
    lines = [
        "# Rejection reason codes",
        "",
        "Generated from `shared/reasons.py` by `python -m shared.reasons`; do not edit by hand.",
        "",
        "A `rejection` refuses the request (the partner receives `id.lindungi.request.rejected` with every",
        "reason found); a `warning` lets the request through and is recorded. The field is the request field",
        "the code usually points at; a reason may name a more exact one. A reason may carry a",
        "language-neutral detail in brackets after the message (a program code, an amount, a date).",
        "",
        "| code | field | kind | Bahasa Indonesia | English |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| `{code.value}` | {f'`{t.field}`' if t.field else ''} | {t.severity.value} "
        f"| {_cell(t.message_id)} | {_cell(t.message_en)} |"
        for code, t in REASONS.items()
    )
    return "\n".join(lines) + "\n"


DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "reason-codes.md"


def write_docs(path: Path = DOCS_PATH) -> Path:
    path.write_text(markdown_table(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_docs()}")  # noqa: T201 - a one-line confirmation for the developer who ran it
