"""Rejection reason codes: the stable vocabulary of why a request was refused or flagged.

A code is part of the contract with partners: once published it keeps its name and meaning, and a new rule
gets a new code. Every code has a message in Bahasa Indonesia (the language partners and workers read) and in
English, and the request field it usually points at. Most codes reject a request; a few are warnings that
registration records beside an accepted request (`Severity.WARNING`).

`docs/reason-codes.md` is generated from this module and the thresholds and legal basis the registration rules
state (`python -m services.registration.domain.reference`); a test keeps it current.

A reason's subject and limit are language-neutral (program codes, character positions, amounts, dates) so that
both messages can carry them, and scrubbed of anything NIK-shaped: a rejection reaches notifications and logs.

The module is long because most of it is the vocabulary itself, one entry per code, kept together so that it
reads as one table (and is reviewed as one when a code changes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from shared.events import RejectionReason
from shared.privacy import scrub

if TYPE_CHECKING:
    from collections.abc import Mapping


class Severity(StrEnum):
    REJECTION = "rejection"  # the request is refused
    WARNING = "warning"  # the request goes through; the finding is recorded
    HOLD = "hold"  # the request waits, neither applied nor refused, for a second principal's verdict


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
    PARTNER_MIGRATION_NOT_ALLOWED = "PARTNER_MIGRATION_NOT_ALLOWED"
    PARTNER_SOURCE_MISMATCH = "PARTNER_SOURCE_MISMATCH"
    PARTNER_BUDGET_NOT_ALLOWED = "PARTNER_BUDGET_NOT_ALLOWED"
    # The public budget that pays the contributions (APBD, APBDes), and holds over it.
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    BUDGET_WORKER_CAP_REACHED = "BUDGET_WORKER_CAP_REACHED"
    ALLOCATION_YEAR_CLOSED = "ALLOCATION_YEAR_CLOSED"
    HOLD_UNKNOWN = "HOLD_UNKNOWN"
    HOLD_SELF_DECISION = "HOLD_SELF_DECISION"
    HOLD_REFUSED = "HOLD_REFUSED"
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
    """A code's field, its general message in both languages, and the sentences that name a finding's facts.

    A finding may carry a `subject` (what exactly is wrong: a program, a NIK character position, a region code)
    and a `limit` (the threshold, window or allowed values it broke). `specific` holds, for each of the shapes
    `subject`, `limit` and `subject+limit`, the two sentences that say them; `{subject}`, `{limit}` and `{field}`
    are filled in. Two findings of one code in one answer therefore always read differently.
    """

    field: str | None
    message_id: str
    message_en: str
    severity: Severity = Severity.REJECTION
    specific: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


def _text(  # noqa: PLR0913 - one row of the vocabulary, written out by keyword
    field_: str | None,
    message_id: str,
    message_en: str,
    *,
    severity: Severity = Severity.REJECTION,
    about: tuple[str, str] | None = None,
    within: tuple[str, str] | None = None,
    about_within: tuple[str, str] | None = None,
) -> ReasonText:
    shapes = {"subject": about, "limit": within, "subject+limit": about_within}
    return ReasonText(field_, message_id, message_en, severity, {k: v for k, v in shapes.items() if v is not None})


_R = ReasonCode
_NIK = "worker.nik"

#: Every code with its field, its messages and the sentences naming its facts. A test checks none is missing.
REASONS: dict[ReasonCode, ReasonText] = {
    _R.NIK_LENGTH: _text(
        _NIK,
        "NIK harus terdiri dari tepat 16 digit.",
        "The NIK must be exactly 16 digits long.",
        about_within=(
            "NIK harus terdiri dari tepat {limit} digit; yang dikirim {subject} karakter.",
            "The NIK must be exactly {limit} digits long; {subject} characters were sent.",
        ),
    ),
    _R.NIK_NOT_DIGITS: _text(
        _NIK,
        "NIK hanya boleh berisi angka.",
        "The NIK may contain digits only.",
        about=(
            "NIK hanya boleh berisi angka; karakter ke-{subject} (dihitung dari kiri mulai 1) bukan angka.",
            (
                "The NIK may contain digits only; the character at position {subject} (counted from the left "
                "from 1) is not a digit."
            ),
        ),
    ),
    _R.NIK_BIRTH_DATE_INVALID: _text(
        _NIK,
        "Tanggal lahir di dalam NIK (digit ke-7 sampai ke-12) bukan tanggal yang sah.",
        "The birth date inside the NIK (digits 7 to 12) is not a valid date.",
        about=(
            "Tanggal lahir di dalam NIK (digit ke-7 sampai ke-12) bukan tanggal yang sah; periksa digit ke-{subject}.",
            "The birth date inside the NIK (digits 7 to 12) is not a valid date; check digits {subject}.",
        ),
    ),
    _R.NIK_SERIAL_ZERO: _text(
        _NIK,
        "Nomor urut NIK (4 digit terakhir) tidak boleh 0000.",
        "The NIK serial number (last 4 digits) must not be 0000.",
    ),
    _R.NIK_REGION_UNKNOWN: _text(
        _NIK,
        "Kode wilayah di dalam NIK tidak ada di daftar wilayah saat ini (mungkin karena pemekaran wilayah); "
        "dicatat sebagai peringatan.",
        "The region code inside the NIK is not in the current region list (perhaps after a region split); "
        "recorded as a warning.",
        severity=Severity.WARNING,
        about=(
            (
                "Kode wilayah {subject} di dalam NIK tidak ada di daftar wilayah saat ini (mungkin karena pemekaran "
                "wilayah); dicatat sebagai peringatan."
            ),
            (
                "The region code {subject} inside the NIK is not in the current region list (perhaps after a region "
                "split); recorded as a warning."
            ),
        ),
    ),
    _R.NIK_BIRTH_DATE_MISMATCH: _text(
        "worker.birth_date",
        "Tanggal lahir tidak sesuai dengan tanggal lahir di dalam NIK.",
        "The birth date does not match the birth date inside the NIK.",
    ),
    _R.NIK_SEX_MISMATCH: _text(
        "worker.sex",
        "Jenis kelamin tidak sesuai dengan NIK (untuk perempuan, tanggal lahir di NIK ditambah 40).",
        "The sex does not match the NIK (for women, the birth day inside the NIK is increased by 40).",
    ),
    _R.REGION_UNKNOWN: _text(
        "region_code",
        "Kode wilayah tidak dikenal.",
        "Unknown region code.",
        about=("Kode wilayah {subject} tidak dikenal.", "Unknown region code {subject}."),
    ),
    _R.REGION_NOT_REGENCY_CITY: _text(
        "region_code",
        "Kode wilayah harus kode kabupaten/kota (contoh: 32.71).",
        "The region code must be a regency/city code (for example 32.71).",
        about=(
            "Kode wilayah {subject} bukan kode kabupaten/kota; gunakan kode kabupaten/kota (contoh: 32.71).",
            "The region code {subject} is not a regency/city code; use one (for example 32.71).",
        ),
    ),
    _R.KECAMATAN_UNKNOWN: _text(
        "worker.domicile_kecamatan",
        "Kode kecamatan domisili tidak dikenal.",
        "Unknown domicile kecamatan code.",
        about=("Kode kecamatan domisili {subject} tidak dikenal.", "Unknown domicile kecamatan code {subject}."),
    ),
    _R.KECAMATAN_NOT_IN_REGION: _text(
        "worker.domicile_kecamatan",
        "Kecamatan domisili berada di luar kabupaten/kota penanggung jawab; dicatat sebagai peringatan.",
        "The domicile kecamatan lies outside the responsible regency/city; recorded as a warning.",
        severity=Severity.WARNING,
        about=(
            (
                "Kecamatan domisili berada di kabupaten/kota {subject}, di luar kabupaten/kota penanggung jawab; "
                "dicatat sebagai peringatan."
            ),
            (
                "The domicile kecamatan lies in regency/city {subject}, outside the responsible regency/city; "
                "recorded as a warning."
            ),
        ),
    ),
    _R.AGE_BELOW_WORKING: _text(
        "worker.birth_date",
        "Pekerja belum mencapai usia kerja minimum pada tanggal mulai kepesertaan.",
        "The worker is below the minimum working age on the coverage start date.",
        about_within=(
            "Pekerja belum berusia {limit} tahun, usia minimum segmen {subject}, pada tanggal mulai kepesertaan.",
            "The worker is not yet {limit}, the minimum age of segment {subject}, on the coverage start date.",
        ),
    ),
    _R.AGE_ABOVE_LIMIT: _text(
        "worker.birth_date",
        "Usia pekerja melebihi batas usia kepesertaan atau program yang diminta.",
        "The worker is above the age limit for enrollment or for a requested program.",
        within=(
            "Usia pekerja melebihi batas usia kepesertaan, {limit} tahun.",
            "The worker is older than the enrollment age limit of {limit}.",
        ),
        about_within=(
            "Program {subject} hanya untuk pekerja yang berusia di bawah {limit} tahun saat mendaftar.",
            "Program {subject} is open only to workers under {limit} at registration.",
        ),
    ),
    _R.CATEGORY_NOT_IN_SEGMENT: _text(
        "category",
        "Kategori pekerja tidak termasuk dalam segmen kepesertaan yang dipilih.",
        "The worker category does not belong to the chosen participant segment.",
        about_within=(
            "Kategori {subject} tidak termasuk dalam segmen kepesertaan yang dipilih (kategori segmen ini: {limit}).",
            "The category {subject} does not belong to the chosen participant segment (its categories: {limit}).",
        ),
    ),
    _R.PROGRAM_NOT_OFFERED: _text(
        "programs",
        "Program tidak tersedia untuk segmen ini.",
        "The program is not offered to this segment.",
        about=(
            "Program {subject} tidak tersedia untuk segmen ini.",
            "Program {subject} is not offered to this segment.",
        ),
    ),
    _R.PROGRAM_MANDATORY_MISSING: _text(
        "programs",
        "Program wajib belum dipilih.",
        "A mandatory program is missing.",
        about=("Program wajib {subject} belum dipilih.", "The mandatory program {subject} is missing."),
    ),
    _R.PROGRAM_DUPLICATE: _text(
        "programs",
        "Program yang sama dicantumkan lebih dari sekali.",
        "The same program is listed more than once.",
        about=("Program {subject} dicantumkan lebih dari sekali.", "Program {subject} is listed more than once."),
    ),
    _R.JKP_PREREQUISITE_MISSING: _text(
        "programs",
        "JKP mensyaratkan kepesertaan JKK, JKM dan JHT (ditambah JP untuk usaha menengah dan besar).",
        "JKP requires enrollment in JKK, JKM and JHT (and JP for medium and large employers).",
        about=(
            "JKP mensyaratkan kepesertaan program {subject}, yang belum dipilih.",
            "JKP requires enrollment in {subject}, which is missing.",
        ),
    ),
    _R.EMPLOYER_MISSING: _text(
        "employer",
        "Data pemberi kerja wajib diisi untuk segmen ini.",
        "Employer details are required for this segment.",
        about=(
            "Data pemberi kerja wajib diisi untuk segmen {subject}.",
            "Employer details are required for segment {subject}.",
        ),
    ),
    _R.WAGE_MISSING: _text(
        "monthly_wage",
        "Upah sebulan wajib diisi dan lebih dari nol untuk peserta Penerima Upah (PU).",
        "A monthly wage above zero is required for wage earners (PU).",
    ),
    _R.INCOME_MISSING: _text(
        "declared_income",
        "Penghasilan sebulan yang dilaporkan wajib diisi untuk peserta Bukan Penerima Upah (BPU).",
        "A declared monthly income is required for non-wage earners (BPU).",
    ),
    _R.INCOME_BELOW_MINIMUM: _text(
        "declared_income",
        "Penghasilan yang dilaporkan di bawah batas minimum.",
        "The declared income is below the minimum.",
        within=(
            "Penghasilan yang dilaporkan di bawah batas minimum {limit}.",
            "The declared income is below the minimum of {limit}.",
        ),
    ),
    _R.CONTRACT_VALUE_MISSING: _text(
        "contract_value",
        "Nilai kontrak proyek wajib diisi dan lebih dari nol untuk peserta Jasa Konstruksi (JAKON).",
        "A project contract value above zero is required for construction workers (JAKON).",
    ),
    _R.CONTRACT_MONTHS_MISSING: _text(
        "contract_months",
        "Jangka waktu perjanjian kerja (bulan) wajib diisi untuk Pekerja Migran Indonesia (PMI).",
        "The placement contract length in months is required for migrant workers (PMI).",
    ),
    _R.FIELD_NOT_APPLICABLE: _text(
        None,
        "Isian ini tidak berlaku untuk segmen ini; kosongkan.",
        "This field does not apply to this segment; leave it out.",
        about=(
            "Isian {field} tidak berlaku untuk segmen {subject}; kosongkan.",
            "The field {field} does not apply to segment {subject}; leave it out.",
        ),
    ),
    _R.FUNDING_NOT_ALLOWED: _text(
        "funding_source",
        "Sumber pendanaan tidak diperbolehkan untuk segmen dan kategori ini.",
        "The funding source is not allowed for this segment and category.",
        about_within=(
            (
                "Sumber pendanaan {subject} tidak diperbolehkan untuk segmen dan kategori ini (yang diperbolehkan: "
                "{limit})."
            ),
            "The funding source {subject} is not allowed for this segment and category (allowed: {limit}).",
        ),
    ),
    _R.COVERAGE_START_INVALID: _text(
        "coverage_start",
        "Tanggal mulai kepesertaan berada di luar rentang yang diizinkan.",
        "The coverage start date is outside the allowed window.",
        within=(
            "Tanggal mulai kepesertaan harus dalam rentang {limit}.",
            "The coverage start date must lie within {limit}.",
        ),
        about=(
            "Tidak ada tarif iuran yang berlaku pada tanggal mulai kepesertaan {subject}.",
            "No contribution rates are in force on the coverage start date {subject}.",
        ),
    ),
    _R.EFFECTIVE_DATE_INVALID: _text(
        "effective_date",
        "Tanggal berlaku berada di luar rentang yang diizinkan.",
        "The effective date is outside the allowed window.",
        within=(
            "Tanggal berlaku harus dalam rentang {limit}.",
            "The effective date must lie within {limit}.",
        ),
        about=(
            "Tanggal berlaku tidak boleh sebelum tanggal mulai kepesertaan {subject}.",
            "The effective date must not lie before the coverage start date {subject}.",
        ),
    ),
    _R.UPDATE_EMPTY: _text(
        None,
        "Permintaan perubahan tidak berisi perubahan apa pun.",
        "The update request contains no change.",
    ),
    _R.PARTICIPANT_UNKNOWN: _text(
        "nik",
        "Peserta dengan NIK ini di segmen ini tidak ditemukan.",
        "There is no participant with this NIK in this segment.",
        about=(
            "Peserta dengan NIK ini di segmen {subject} tidak ditemukan.",
            "There is no participant with this NIK in segment {subject}.",
        ),
    ),
    _R.PARTICIPANT_ALREADY_ACTIVE: _text(
        "nik",
        "Peserta dengan NIK ini sudah aktif di segmen ini.",
        "The participant with this NIK is already active in this segment.",
        about=(
            "Peserta dengan NIK ini sudah aktif di segmen {subject}.",
            "The participant with this NIK is already active in segment {subject}.",
        ),
    ),
    _R.PARTICIPANT_NOT_ACTIVE: _text(
        "nik",
        "Kepesertaan sudah berakhir; ajukan reaktivasi terlebih dahulu.",
        "The participation has ended; reactivate it first.",
        about=(
            "Kepesertaan di segmen {subject} sudah berakhir; ajukan reaktivasi terlebih dahulu.",
            "The participation in segment {subject} has ended; reactivate it first.",
        ),
    ),
    _R.REQUEST_ID_CONFLICT: _text(
        "request_id",
        "request_id ini sudah dipakai mitra untuk permintaan lain yang isinya berbeda.",
        "This request_id was already used by the partner for a different request.",
    ),
    _R.PARTNER_UNKNOWN: _text(
        None,
        "Mitra pengirim tidak terdaftar.",
        "The sending partner is not registered.",
        about=("Mitra pengirim {subject} tidak terdaftar.", "The sending partner {subject} is not registered."),
    ),
    _R.PARTNER_REGION_NOT_ALLOWED: _text(
        "region_code",
        "Mitra tidak berwenang mendaftarkan pekerja di wilayah ini.",
        "The partner may not enroll workers in this region.",
        about=(
            "Mitra tidak berwenang mendaftarkan pekerja di wilayah {subject}.",
            "The partner may not enroll workers in region {subject}.",
        ),
    ),
    _R.PARTNER_SEGMENT_NOT_ALLOWED: _text(
        "segment",
        "Mitra tidak berwenang untuk segmen kepesertaan ini.",
        "The partner may not act for this participant segment.",
        about=(
            "Mitra tidak berwenang untuk segmen kepesertaan {subject}.",
            "The partner may not act for participant segment {subject}.",
        ),
    ),
    _R.PARTNER_FUNDING_NOT_ALLOWED: _text(
        "funding_source",
        "Mitra tidak berwenang menggunakan sumber pendanaan ini.",
        "The partner may not use this funding source.",
        about=(
            "Mitra tidak berwenang menggunakan sumber pendanaan {subject}.",
            "The partner may not use funding source {subject}.",
        ),
    ),
    _R.PARTNER_MIGRATION_NOT_ALLOWED: _text(
        "migrated_from",
        "Mitra tidak berwenang mengirim migrasi kepesertaan yang sudah ada.",
        "The partner may not send migrations of existing participations.",
        about=(
            "Mitra {subject} tidak memiliki hak migrasi untuk mengirim kepesertaan yang sudah ada.",
            "The partner {subject} has no migration right to send existing participations.",
        ),
    ),
    _R.PARTNER_SOURCE_MISMATCH: _text(
        "source",
        "Pesan ini dikirim lewat topik mitra lain daripada mitra yang disebut di `source`; ditolak.",
        "This message came through another partner's topic than the partner its `source` names; refused.",
        about=(
            (
                "`source` menyebut mitra {subject}, tetapi pesan dikirim lewat topik mitra pengirim yang lain; "
                "permintaan ditolak dan dicatat."
            ),
            (
                "`source` names partner {subject}, but the message came through another partner's topic; the "
                "request is refused and logged."
            ),
        ),
    ),
    _R.PARTNER_BUDGET_NOT_ALLOWED: _text(
        "region_code",
        "Mitra tidak berwenang mengelola anggaran wilayah ini.",
        "The partner may not manage this region's budget.",
        about=(
            "Mitra tidak memiliki hak anggaran (`budget`) untuk wilayah {subject}.",
            "The partner has no budget right for region {subject}.",
        ),
    ),
    _R.BUDGET_EXHAUSTED: _text(
        "funding_source",
        "Anggaran iuran wilayah tidak cukup untuk pendaftaran ini; permintaan ditahan menunggu persetujuan.",
        "The region's contribution budget cannot carry this enrollment; the request is held for approval.",
        severity=Severity.HOLD,
        about_within=(
            (
                "Anggaran {subject} tidak cukup: pendaftaran ini memerlukan cadangan iuran {limit}; permintaan "
                "ditahan menunggu persetujuan pejabat kedua."
            ),
            (
                "Budget {subject} cannot carry it: this enrollment needs a reservation of {limit}; the request is "
                "held for a second official's approval."
            ),
        ),
    ),
    _R.BUDGET_WORKER_CAP_REACHED: _text(
        "funding_source",
        "Kuota jumlah pekerja dalam anggaran wilayah sudah penuh; permintaan ditahan menunggu persetujuan.",
        "The budget's cap in workers is reached; the request is held for approval.",
        severity=Severity.HOLD,
        about_within=(
            "Kuota pekerja anggaran {subject} sudah penuh ({limit} pekerja); permintaan ditahan menunggu persetujuan.",
            "Budget {subject} has reached its cap of {limit} workers; the request is held for approval.",
        ),
    ),
    _R.ALLOCATION_YEAR_CLOSED: _text(
        "fiscal_year",
        "Tahun anggaran sudah berakhir; alokasinya tidak dapat diubah lagi.",
        "The fiscal year has ended; its allocation can no longer change.",
        about_within=(
            "Tahun anggaran {subject} sudah berakhir; alokasi hanya untuk tahun {limit} dan sesudahnya.",
            "Fiscal year {subject} has ended; allocations can be declared for {limit} and later only.",
        ),
    ),
    _R.HOLD_UNKNOWN: _text(
        "held_request_id",
        "Tidak ada permintaan tertahan yang menunggu keputusan dengan nomor ini.",
        "No held request with this id is waiting for a verdict.",
        about=(
            "Permintaan {subject} tidak sedang ditahan menunggu keputusan.",
            "Request {subject} is not held waiting for a verdict.",
        ),
    ),
    _R.HOLD_SELF_DECISION: _text(
        "source",
        "Permintaan yang ditahan harus diputuskan oleh pejabat lain, bukan mitra yang mengirimnya.",
        "A held request must be decided by another principal than the partner that sent it.",
        about=(
            "Mitra {subject} mengirim permintaan ini sendiri dan tidak boleh memutuskannya.",
            "Partner {subject} sent this request itself and may not decide it.",
        ),
    ),
    _R.HOLD_REFUSED: _text(
        None,
        "Permintaan yang ditahan karena anggaran ditolak oleh pejabat pemeriksa.",
        "The request held over the budget was refused by the checking official.",
        about=(
            "Permintaan yang ditahan karena anggaran ditolak oleh {subject}.",
            "The request held over the budget was refused by {subject}.",
        ),
    ),
    _R.SCHEMA_INVALID: _text(
        None,
        "Isi pesan tidak sesuai dengan skema.",
        "The message does not match the schema.",
        about=("Isi pesan tidak sesuai dengan skema: {subject}.", "The message does not match the schema: {subject}."),
    ),
    _R.SCHEMA_VERSION_UNSUPPORTED: _text(
        "schemaversion",
        "Versi skema pesan tidak didukung.",
        "The message schema version is not supported.",
        about_within=(
            "Versi skema pesan {subject} tidak didukung (yang didukung: {limit}).",
            "The message schema version {subject} is not supported (supported: {limit}).",
        ),
    ),
    _R.EVENT_TYPE_UNKNOWN: _text(
        "type",
        "Jenis pesan tidak dikenal.",
        "Unknown message type.",
        about=("Jenis pesan {subject} tidak dikenal.", "Unknown message type {subject}."),
    ),
}

#: `MESSAGES[code] == (Indonesian, English)`, for callers that only want the two texts.
MESSAGES: dict[ReasonCode, tuple[str, str]] = {code: (t.message_id, t.message_en) for code, t in REASONS.items()}


def _shape(subject: str | None, limit: str | None) -> str | None:
    if subject is not None and limit is not None:
        return "subject+limit"
    if subject is not None:
        return "subject"
    return "limit" if limit is not None else None


def rejection(
    code: ReasonCode, field: str | None = None, subject: str | None = None, limit: str | None = None
) -> RejectionReason:
    """The contract form of a reason: code, field (the code's usual field unless given), subject, limit and
    both messages, which name the subject and the limit.

    Subject and limit are NIK-scrubbed because they end up in notifications and logs.
    """
    text = REASONS[code]
    at = field if field is not None else text.field
    subject, limit = (scrub(subject) if subject else None), (scrub(limit) if limit else None)
    shape = _shape(subject, limit)
    message_id, message_en = text.message_id, text.message_en
    if shape is not None and shape in text.specific:
        facts = {"subject": subject, "limit": limit, "field": at}
        message_id, message_en = (template.format(**facts) for template in text.specific[shape])
    elif shape is not None:
        # A fact the vocabulary has no sentence for still reaches the partner, after the general message.
        suffix = f" ({'; '.join(f for f in (subject, limit) if f)})"
        message_id, message_en = message_id + suffix, message_en + suffix
    return RejectionReason(
        code=code.value, field=at, subject=subject, limit=limit, message_id=message_id, message_en=message_en
    )


@dataclass(frozen=True, slots=True)
class RuleReference:
    """What a partner needs to know about the rule behind a code: its thresholds and where they come from."""

    thresholds: str
    basis: str


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def markdown_table(rules: Mapping[ReasonCode, RuleReference]) -> str:
    """The reason-code reference (docs/reason-codes.md) as Markdown, with the rules' thresholds and basis as
    the service that applies them states them (`rules`)."""
    lines = [
        "# Rejection reason codes",
        "",
        "Generated from `shared/reasons.py` and the registration rules by",
        "`python -m services.registration.domain.reference` (`make schemas`); do not edit by hand.",
        "",
        "A `rejection` refuses the request (the partner receives `id.lindungi.request.rejected` with every",
        "reason found); a `warning` lets the request through and is recorded. The field is the request field",
        "the code usually points at; a reason may name a more exact one. A reason carries, where it has them, a",
        "language-neutral `subject` (what exactly is wrong: a program code, the 1-based position of a NIK",
        "character, a region code) and `limit` (the threshold, window or allowed values), and both messages name",
        "them, so that one code twice in an answer always says what differs.",
        "",
        "| code | field | kind | thresholds | legal basis | Bahasa Indonesia | English |",
        "|---|---|---|---|---|---|---|",
    ]
    for code, t in REASONS.items():
        rule = rules.get(code)
        thresholds, basis = (rule.thresholds, rule.basis) if rule else ("", "")
        lines.append(
            f"| `{code.value}` | {f'`{t.field}`' if t.field else ''} | {t.severity.value} | {_cell(thresholds)} "
            f"| {_cell(basis)} | {_cell(t.message_id)} | {_cell(t.message_en)} |"
        )
    return "\n".join(lines) + "\n"


DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "reason-codes.md"
