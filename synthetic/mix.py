"""Who a region enrolls: Indonesian names, the kinds of worker with their weights, and the figures they draw.

Also the plain values the hot loop works with (see the note above `TEXT`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from shared.events import (
    Category,
    EmployerSize,
    FundingSource,
    Program,
    RiskLevel,
    Segment,
    Sex,
)

# --- Names -------------------------------------------------------------------------------------------------

MALE_NAMES = (
    "Agus", "Ahmad", "Andi", "Arif", "Bambang", "Budi", "Dedi", "Dimas", "Eko", "Fajar", "Faisal", "Hadi",
    "Hendra", "Heru", "Ilham", "Imam", "Joko", "Kurniawan", "Made", "Muhammad", "Nyoman", "Putu", "Rahmat",
    "Rizky", "Rudi", "Slamet", "Sugeng", "Supriyadi", "Teguh", "Wahyu", "Wayan", "Yusuf", "Yudi", "Asep",
    "Ujang", "Dadang", "Hasan", "Ketut", "Stefanus", "Yohanes", "Irfan", "Bayu", "Gilang", "Reza", "Taufik",
)  # fmt: skip
FEMALE_NAMES = (
    "Ani", "Ayu", "Dewi", "Dian", "Endang", "Fitri", "Indah", "Intan", "Kartini", "Lestari", "Lina", "Maya",
    "Nur", "Nurul", "Putri", "Rina", "Rini", "Ratna", "Siti", "Sri", "Suryani", "Tuti", "Wati", "Yanti",
    "Yuni", "Nining", "Euis", "Komang", "Ni Luh", "Maria", "Agustina", "Fatimah", "Aisyah", "Nabila",
    "Anisa", "Rahmawati", "Wulan", "Sari", "Mega", "Kurniasih", "Novita", "Desi", "Eka", "Ika", "Rosmawati",
)  # fmt: skip
FAMILY_NAMES = (
    "Santoso", "Wijaya", "Saputra", "Setiawan", "Hidayat", "Pratama", "Susanto", "Kusuma", "Nugroho",
    "Gunawan", "Siregar", "Nasution", "Harahap", "Lubis", "Simanjuntak", "Sitompul", "Pane", "Hutapea",
    "Sinaga", "Situmorang", "Manurung", "Tambunan", "Purba", "Ginting", "Tarigan", "Sembiring",
    "Wibowo", "Halim", "Lim", "Tan", "Rahman", "Hakim", "Ramadhan", "Firmansyah", "Syahputra", "Hasibuan",
    "Daulay", "Pohan", "Mandala", "Sulistyo", "Purnomo", "Prasetyo", "Handoko", "Lumbantobing", "Silalahi",
    "Manik", "Rangkuti", "Tanjung", "Batubara", "Matondang", "Sihombing", "Pangaribuan", "Marpaung",
    "Pardede", "Wenda", "Kogoya", "Rumbiak", "Pattimura", "Latuconsina", "Mokodompit", "Lasut", "Sondakh",
)  # fmt: skip

# --- The mix -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """A kind of worker a region enrolls: segment, category, who funds them, and their typical figures."""

    segment: Segment
    category: Category
    weight: float
    funding: tuple[tuple[FundingSource, float], ...]
    ages: tuple[int, int, int]  # low, high, mode (triangular)
    female_share: float


PROFILES: tuple[Profile, ...] = (
    Profile(
        Segment.BPU,
        Category.VULNERABLE,
        0.34,
        (
            (FundingSource.APBD, 0.72),
            (FundingSource.APBDES, 0.12),
            (FundingSource.APBN, 0.05),
            (FundingSource.CSR, 0.04),
            (FundingSource.ZAKAT, 0.04),
            (FundingSource.SELF, 0.03),
        ),
        (18, 64, 40),
        0.45,
    ),
    Profile(Segment.BPU, Category.INFORMAL, 0.14, ((FundingSource.SELF, 1.0),), (18, 64, 35), 0.40),
    Profile(
        Segment.PU,
        Category.NON_ASN_STAFF,
        0.15,
        ((FundingSource.APBD, 0.85), (FundingSource.EMPLOYER, 0.15)),
        (20, 56, 33),
        0.50,
    ),
    Profile(Segment.PU, Category.FORMAL_EMPLOYEE, 0.27, ((FundingSource.EMPLOYER, 1.0),), (18, 60, 30), 0.40),
    Profile(Segment.JAKON, Category.CONSTRUCTION, 0.07, ((FundingSource.EMPLOYER, 1.0),), (18, 60, 35), 0.08),
    Profile(
        Segment.PMI,
        Category.MIGRANT,
        0.03,
        ((FundingSource.SELF, 0.85), (FundingSource.EMPLOYER, 0.15)),
        (19, 45, 27),
        0.62,
    ),
)

SIZES = (EmployerSize.MICRO, EmployerSize.SMALL, EmployerSize.MEDIUM, EmployerSize.LARGE)
_SIZE_WEIGHTS = (0.15, 0.25, 0.25, 0.35)
RISKS = tuple(RiskLevel)
_RISK_WEIGHTS = (0.40, 0.30, 0.15, 0.10, 0.05)
# For a bisect of one uniform draw (the last bound is 1.0, so it is left out).
SIZE_CUMULATIVE = list(itertools.accumulate(_SIZE_WEIGHTS))[:-1]
RISK_CUMULATIVE = list(itertools.accumulate(_RISK_WEIGHTS))[:-1]
BPU_INCOMES = (1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000)
PMI_MONTHS = (6, 12, 18, 24, 24, 24)
DAYS_PER_YEAR = 365.2425
SERIALS = tuple(f"{serial:04d}" for serial in range(10_000))

# The hot loop avoids enum attribute lookups and `.value` (each costs more than a random draw): members are
# bound to module names once, and turned into their plain strings through one dict.
PU, BPU, JAKON = Segment.PU, Segment.BPU, Segment.JAKON
FEMALE, MALE = Sex.FEMALE, Sex.MALE
JKK, JKM, JHT, JP, JKP = Program.JKK, Program.JKM, Program.JHT, Program.JP, Program.JKP
PROGRAMS = tuple(Program)
TEXT: dict[str, str] = {
    member: member.value
    for enum in (Segment, Category, FundingSource, Sex, Program, EmployerSize, RiskLevel)
    for member in enum
}
