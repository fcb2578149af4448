"""The dashboard's words and numbers in Bahasa Indonesia (the default) and English.

Labels that the notification templates also use (segments, categories, funders, levels) carry the templates'
wording, kept equal by tests/unit/reporting/test_dashboard_words.py rather than imported: the two services
share no code outside `shared/`, and a test that reads both keeps them from drifting apart. Numbers follow
each language's convention: `12.345`, `Rp1.234.567`, `12,5%` in Indonesian; `12,345`, `Rp1,234,567`, `12.5%`
in English, as the notifications write them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")
WIB = ZoneInfo("Asia/Jakarta")

MONTHS: dict[Language, tuple[str, ...]] = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni",
           "Juli", "Agustus", "September", "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June",
           "July", "August", "September", "October", "November", "December"),
}  # fmt: skip

# The population behind the estimated denominator (shared/data/README.md): its source and year, shown with
# every coverage figure so a reader knows what the percentage is of.
POPULATION_SOURCE = {"id": "penduduk Dukcapil Desember 2024", "en": "Dukcapil population, December 2024"}

# Overlaps with services/notification/templates/_labels.<lang>.j2: same words (checked by a test).
SEGMENTS = {
    "id": {"PU": "Penerima Upah", "BPU": "Bukan Penerima Upah", "JAKON": "Jasa Konstruksi",
           "PMI": "Pekerja Migran Indonesia"},
    "en": {"PU": "wage earner (PU)", "BPU": "non-wage earner (BPU)", "JAKON": "construction (Jakon)",
           "PMI": "migrant worker (PMI)"},
}  # fmt: skip
CATEGORIES = {
    "id": {"VULNERABLE": "pekerja rentan", "NON_ASN_STAFF": "pegawai pemerintah non-ASN",
           "FORMAL_EMPLOYEE": "pegawai", "INFORMAL": "pekerja informal", "CONSTRUCTION": "pekerja konstruksi",
           "MIGRANT": "pekerja migran"},
    "en": {"VULNERABLE": "vulnerable worker", "NON_ASN_STAFF": "non-ASN government staff",
           "FORMAL_EMPLOYEE": "employee", "INFORMAL": "informal worker", "CONSTRUCTION": "construction worker",
           "MIGRANT": "migrant worker"},
}  # fmt: skip
FUNDERS = {
    "id": {"APBD": "APBD", "APBN": "APBN", "APBDES": "APBDes", "CSR": "dana CSR", "ZAKAT": "dana zakat (BAZNAS)",
           "EMPLOYER": "pemberi kerja", "SELF": "pekerja sendiri"},
    "en": {"APBD": "the regional budget (APBD)", "APBN": "the national budget (APBN)",
           "APBDES": "the village budget (APBDes)", "CSR": "CSR funds", "ZAKAT": "zakat funds (BAZNAS)",
           "EMPLOYER": "the employer", "SELF": "the worker"},
}  # fmt: skip
PAYERS = {
    "id": {"EMPLOYER": "pemberi kerja", "WORKER": "pekerja sendiri", "FUNDER": "penyandang dana",
           "CENTRAL_GOVERNMENT": "Pemerintah Pusat"},
    "en": {"EMPLOYER": "the employer", "WORKER": "the worker", "FUNDER": "the funder",
           "CENTRAL_GOVERNMENT": "the central government"},
}  # fmt: skip
LEVELS = {
    "id": {"national": "nasional", "province": "provinsi", "regency/city": "kabupaten/kota", "kecamatan": "kecamatan"},
    "en": {"national": "national", "province": "province", "regency/city": "regency/city", "kecamatan": "kecamatan"},
}

# Dashboard-only labels.
PROGRAMS = {
    "id": {"JKK": "Jaminan Kecelakaan Kerja (JKK)", "JKM": "Jaminan Kematian (JKM)", "JHT": "Jaminan Hari Tua (JHT)",
           "JP": "Jaminan Pensiun (JP)", "JKP": "Jaminan Kehilangan Pekerjaan (JKP)"},
    "en": {"JKK": "work accident (JKK)", "JKM": "death benefit (JKM)", "JHT": "old-age savings (JHT)",
           "JP": "pension (JP)", "JKP": "job-loss benefit (JKP)"},
}  # fmt: skip
SEXES = {"id": {"M": "laki-laki", "F": "perempuan"}, "en": {"M": "male", "F": "female"}}
FLOWS = {
    "id": {
        "enrollments": "pendaftaran",
        "terminations": "kepesertaan berakhir",
        "reactivations": "aktif kembali",
        "migrations": "dipindahkan dari sistem lain",
        "holds": "ditahan: anggaran habis",
    },
    "en": {
        "enrollments": "registrations",
        "terminations": "terminations",
        "reactivations": "reactivations",
        "migrations": "moved from another system",
        "holds": "held: budget exhausted",
    },
}


def sentence(text: str) -> str:
    """A label as the start of a line: `pekerja rentan` -> `Pekerja rentan` (the rest unchanged)."""
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Words:
    """Everything the pages say, in one language: labels, messages and number formats."""

    lang: Language

    def __call__(self, key: str, **facts: object) -> str:
        text = TEXT[key][0 if self.lang == "id" else 1]
        return text.format(**facts) if facts else text

    @property
    def other(self) -> Language:
        return "en" if self.lang == "id" else "id"

    def count(self, value: int | str) -> str:
        """A count, or a suppressed figure (`<5`) as the API gives it."""
        if isinstance(value, str):
            return value
        grouped = f"{value:,}"
        return grouped.replace(",", ".") if self.lang == "id" else grouped

    def rupiah(self, value: int | str) -> str:
        if isinstance(value, str):
            return self("hidden_money", k=value.removeprefix("<"))
        return "Rp" + self.count(value)

    def percent(self, ratio: float | None, digits: int | None = None) -> str:
        """Two decimals, more below 1% (early coverage is small, and 0.004% is not 0%): `0,0047%`."""
        if ratio is None:
            return "–"
        value = ratio * 100
        if digits is None:
            digits = 2 if value == 0 or value >= 1 else 3 if value >= 0.1 else 4
        text = f"{value:.{digits}f}"
        return (text.replace(".", ",") if self.lang == "id" else text) + "%"

    def decimal(self, value: float) -> str:
        text = f"{value:g}"
        return text.replace(".", ",") if self.lang == "id" else text

    def moment(self, value: datetime) -> str:
        """`5 Maret 2026, 10.00.00 WIB` / `5 March 2026, 10:00:00 WIB`."""
        local = value.astimezone(WIB)
        clock = local.strftime("%H.%M.%S" if self.lang == "id" else "%H:%M:%S")
        return f"{local.day} {MONTHS[self.lang][local.month - 1]} {local.year}, {clock} WIB"

    def period(self, period: str) -> str:
        """A counter's period: `day/2026-03-05` -> `5 Maret 2026`, `month/2026-03` -> `Maret 2026`."""
        kind, _, value = period.partition("/")
        parts = [int(p) for p in value.split("-")]
        month = MONTHS[self.lang][parts[1] - 1]
        return f"{parts[2]} {month} {parts[0]}" if kind == "day" else f"{month} {parts[0]}"

    def label(self, table: dict[str, dict[str, str]], code: str) -> str:
        return sentence(table[self.lang].get(code, code))


# key -> (Bahasa Indonesia, English)
TEXT: dict[str, tuple[str, str]] = {
    "title": ("Dasbor Cakupan Jaminan Sosial Ketenagakerjaan", "Employment Social Security Coverage Dashboard"),
    "subtitle": ("Inpres 2/2021: perlindungan pekerja oleh setiap daerah",
                 "Presidential Instruction 2/2021: every region protecting its workers"),
    "language": ("Bahasa", "Language"),
    "breadcrumbs": ("Jalur wilayah", "Region path"),
    "as_of": ("Data per {when}", "Figures as of {when}"),
    "offsets": ("Offset sumber", "Source offsets"),
    "offsets_summary": ("{partitions} partisi, {events} peristiwa dibaca",
                        "{partitions} partitions, {events} events read"),
    "stale": ("Data tidak terkini: layanan pelaporan tidak menjawab sejak {when}. Angka terakhir tetap ditampilkan.",
              "Data not current: the reporting service has not answered since {when}. The last figures stay shown."),
    "not_ready": ("Data belum siap: layanan pelaporan sedang memuat. Halaman ini dimuat ulang sendiri.",
                  "Figures not ready: the reporting service is still loading. This page reloads by itself."),
    "not_found_title": ("Wilayah tidak ditemukan", "Region not found"),
    "not_found": ("Tidak ada wilayah dengan kode {code}. Kode memakai format Kemendagri, misalnya 32.71.",
                  "There is no region with the code {code}. Codes are Kemendagri codes, for example 32.71."),
    "back_national": ("Kembali ke Indonesia", "Back to Indonesia"),
    "active": ("Peserta aktif", "Active participants"),
    "coverage": ("Cakupan", "Coverage"),
    "coverage_of": ("dari {denominator} angkatan kerja", "of a workforce of {denominator}"),
    "estimate": ("perkiraan: {population} × {share} usia kerja × {participation} partisipasi angkatan kerja",
                 "estimate: {population} × {share} working age × {participation} labour-force participation"),
    "official": ("angka resmi yang dimuat operator", "official figure loaded by an operator"),
    "no_denominator": ("Tanpa penyebut: data penduduk berhenti di tingkat kabupaten/kota",
                       "No denominator: population data stops at regency/city level"),
    "target": ("Target", "Target"),
    "target_gap": ("kurang {gap} peserta", "{gap} participants short"),
    "target_none": ("belum ditetapkan", "not set"),
    "rank": ("Peringkat", "Rank"),
    "rank_national": ("{rank} dari {total} kabupaten/kota", "{rank} of {total} regencies/cities"),
    "rank_in_province": ("{rank} dari {total} di provinsinya", "{rank} of {total} in its province"),
    "rank_province": ("{rank} dari {total} provinsi", "{rank} of {total} provinces"),
    "apbd": ("Iuran dari APBD", "Contributions paid from the APBD"),
    "apbd_month": ("per bulan: penyandang dana dan pemberi kerja pegawai non-ASN",
                   "a month: as funder, and as the employer of non-ASN staff"),
    "apbd_year": ("{amount} setahun anggaran (12 × bulanan, pada kepesertaan hari ini)",
                  "{amount} for the fiscal year (12 × monthly, at today's enrollment)"),
    "hidden_money": ("disembunyikan (di bawah {k} peserta)", "hidden (fewer than {k} participants)"),
    "today": ("Hari ini", "Today"),
    "enrolled_today": ("Hari ini: {count} pendaftaran", "Today: {count} registrations"),
    "this_month": ("Bulan ini", "This month"),
    "total": ("Total", "Total"),
    "section_map": ("Peta cakupan per provinsi", "Coverage by province"),
    "map_note": (("Batas kabupaten/kota berlisensi terbuka belum tersedia: di dalam provinsi ditampilkan "
                  "diagram batang berperingkat."),
                 ("No openly licensed regency/city boundaries are available: inside a province, ranked bars are "
                  "shown instead.")),
    "section_barometer": ("Barometer", "Barometer"),
    "barometer_provinces": ("Peringkat provinsi", "Provinces ranked"),
    "barometer_province": ("Peringkat kabupaten/kota di {province}", "Regencies/cities of {province} ranked"),
    "barometer_kota": ("Peringkat seluruh kota (anggota Apeksi)", "All cities (kota, Apeksi's members) ranked"),
    "own_region": ("wilayah ini", "this region"),
    "section_children": ("Wilayah di bawahnya", "Regions below"),
    "children_kecamatan": ("Peserta aktif per kecamatan", "Active participants by kecamatan"),
    "section_who": ("Siapa yang terlindungi", "Who is protected"),
    "by_category": ("Menurut kategori", "By category"),
    "by_segment": ("Menurut segmen", "By segment"),
    "by_program": ("Menurut program", "By programme"),
    "by_funding": ("Menurut sumber dana", "By funding source"),
    "by_sex": ("Menurut jenis kelamin", "By sex"),
    "by_age": ("Menurut kelompok umur", "By age band"),
    "age_band": ("{band} tahun", "{band} years"),
    "section_money": ("Iuran dan beban anggaran", "Contributions and budget"),
    "money_by_funding": ("Iuran per bulan menurut sumber dana", "Contributions a month by funding source"),
    "money_crosstab": ("Iuran per bulan: sumber dana × pembayar", "Contributions a month: funding source × payer"),
    "money_year": ("Setahun", "A year"),
    "section_flows": ("Pendaftaran dan kepesertaan berakhir", "Registrations and terminations"),
    "flows_trend": ("Tren per hari dan per bulan", "Trend by day and by month"),
    "flows_window": ("Layanan pelaporan menyimpan dua hari dan dua bulan terakhir per wilayah.",
                     "The reporting service keeps the latest two days and two months per region."),
    "section_rejections": ("Permohonan ditolak", "Rejected requests"),
    "rejections_by_reason": ("Menurut alasan penolakan", "By rejection reason"),
    "rejections_by_partner": ("Menurut mitra pengirim", "By sending partner"),
    "rejections_note": ("Satu penolakan dihitung sekali untuk setiap alasannya.",
                        "A rejection counts once under each of its reasons."),
    "section_budgets": ("Anggaran APBD/APBDes", "APBD/APBDes budgets"),
    "budget_position": ("Alokasi, dicadangkan dan terpakai", "Allocation, reserved and spent"),
    "budget_note": (("Dicadangkan: iuran sampai akhir tahun anggaran bagi pekerja yang diterima. Terpakai: bagian "
                     "bulan-bulan sampai bulan ini. Sisa bertahan: sisa ÷ laju pencadangan per bulan 30 hari "
                     "terakhir."),
                    ("Reserved: contributions to the end of the fiscal year for the workers accepted. Spent: the "
                     "months up to this one. Runway: remaining ÷ the monthly rate of reservation over the last "
                     "30 days.")),
    "budget_full_coverage": ("Biaya cakupan penuh pekerja rentan", "Cost of covering every vulnerable worker"),
    "full_coverage_note": (("Perkiraan: {workforce} angkatan kerja × {share} pekerja informal (BPS Sakernas "
                            "Februari 2024) × {package} per bulan (JKK + JKM, BPU Rp1.000.000)."),
                           ("Estimate: a workforce of {workforce} × {share} informal workers (BPS Sakernas, "
                            "February 2024) × {package} a month (JKK + JKM, BPU on Rp1,000,000).")),
    "full_coverage_none": ("Tanpa angkatan kerja wilayah ini, biaya cakupan penuh tidak dapat diperkirakan.",
                           "Without a workforce figure for this region, full coverage cannot be estimated."),
    "runway_months": ("{months} bulan", "{months} months"),
    "runway_none": ("– (tanpa pertambahan)", "– (no growth)"),
    "col_budget": ("Anggaran", "Budget"),
    "col_allocation": ("Alokasi", "Allocation"),
    "col_reserved": ("Dicadangkan", "Reserved"),
    "col_spent": ("Terpakai s.d. bulan ini", "Spent to date"),
    "col_remaining": ("Sisa", "Remaining"),
    "col_reserved_share": ("Bagian dicadangkan", "Share reserved"),
    "col_workers": ("Pekerja dicadangkan", "Workers reserved"),
    "col_rate": ("Laju per bulan", "Rate a month"),
    "col_runway": ("Sisa bertahan", "Runway"),
    "col_holds": ("Permohonan ditahan", "Requests held"),
    "col_estimated": ("Perkiraan pekerja rentan", "Estimated vulnerable workers"),
    "col_uncovered": ("Belum tercakup", "Not yet covered"),
    "col_months_left": ("Sisa bulan", "Months left"),
    "col_cost_remaining": ("Biaya sisa tahun", "Cost, rest of the year"),
    "col_gap_remaining": ("Kekurangan sisa tahun", "Gap, rest of the year"),
    "col_cost_next": ("Biaya tahun berikutnya", "Cost, next fiscal year"),
    "col_gap_next": ("Kekurangan tahun berikutnya", "Gap, next fiscal year"),
    "col_region": ("Wilayah", "Region"),
    "col_position": ("No.", "No."),
    "col_rank_national": ("Peringkat nasional", "National rank"),
    "col_province": ("Provinsi", "Province"),
    "col_label": ("Kelompok", "Group"),
    "col_active": ("Peserta aktif", "Active participants"),
    "col_share": ("Bagian", "Share"),
    "col_coverage": ("Cakupan", "Coverage"),
    "col_workforce": ("Angkatan kerja", "Workforce"),
    "col_period": ("Periode", "Period"),
    "col_month": ("Per bulan", "A month"),
    "col_reason": ("Alasan", "Reason"),
    "col_code": ("Kode", "Code"),
    "col_partner": ("Mitra", "Partner"),
    "col_count": ("Jumlah", "Count"),
    "col_funding": ("Sumber dana", "Funding source"),
    "data_table": ("Tabel data", "Data table"),
    "no_data": ("Belum ada data.", "No data yet."),
    "suppressed_note": ("Angka 1 sampai {k_less} ditampilkan sebagai <{k} (perlindungan data sel kecil).",
                        "Counts from 1 to {k_less} are shown as <{k} (small-cell protection)."),
    "download_csv": ("Unduh CSV tampilan ini", "Download this view as CSV"),
    "api": ("API JSON", "JSON API"),
    "download_budgets": ("Unduh CSV anggaran", "Download the budgets as CSV"),
    "sources": ("Sumber", "Sources"),
    "source_regions": ("Kode wilayah dan penduduk: Kemendagri/Dukcapil melalui cahyadsn/wilayah (MIT).",
                       "Region codes and population: Kemendagri/Dukcapil via cahyadsn/wilayah (MIT)."),
    "source_map": (("Batas provinsi: “Indonesia GeoJSON & TopoJSON Maps (38 Provinces)” (denyherianto), "
                    "tanpa perubahan, lisensi"),
                   ("Province boundaries: “Indonesia GeoJSON & TopoJSON Maps (38 Provinces)” (denyherianto), "
                    "unchanged, licence")),
    "charts_by": ("Grafik: Observable Plot (ISC), dimuat dari layanan ini.",
                  "Charts: Observable Plot (ISC), served by this service."),
}  # fmt: skip
