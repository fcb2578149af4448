"""Synthetic enrollment requests: realistic, seeded, and labelled with what the rules must say about them.

For tests, demos and benchmarks. A request is built from the region reference: the NIK encodes a real
kecamatan of the responsible regency/city, the worker's birth date and sex; regencies/cities are drawn in
proportion to their population; the mix of segments, categories and funding sources follows what regions
enroll under Inpres 2/2021 (many vulnerable workers funded by the APBD, the region's own non-ASN staff,
formal employees, some construction and migrant workers).

A controlled share of requests is made invalid on purpose, each labelled with exactly the reason codes the
rules produce for it (validated with the same `today` and regions), and a share are re-sends of an earlier
request (same request id), labelled as duplicates. Everything, request ids included, follows from the seed.

Speed: records are built as JSON-ready dicts; `generate` validates each into an `EnrollmentRequest` (pydantic
validation of a dict is faster than `model_construct` of nested models, and proves the output fits the
schema); `generate_dicts` and `generate_json` skip the models for benchmarks.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from services.registration.domain.age import age_on
from services.registration.domain.contributions import load_rate_table
from services.registration.domain.nik import format_nik
from services.registration.domain.rules import CATEGORIES, DEFAULT_LIMITS, FUNDING
from shared.events import (
    Category,
    EmployerSize,
    EnrollmentRequest,
    FundingSource,
    Program,
    RiskLevel,
    Segment,
    Sex,
)
from shared.reasons import ReasonCode
from shared.regions import Regions, load_regions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

R = ReasonCode

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

_SIZES = (EmployerSize.MICRO, EmployerSize.SMALL, EmployerSize.MEDIUM, EmployerSize.LARGE)
_SIZE_WEIGHTS = (0.15, 0.25, 0.25, 0.35)
_RISKS = tuple(RiskLevel)
_RISK_WEIGHTS = (0.40, 0.30, 0.15, 0.10, 0.05)
_BPU_INCOMES = (1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000)
_PMI_MONTHS = (6, 12, 18, 24, 24, 24)
_DAYS_PER_YEAR = 365.2425
_SERIALS = tuple(f"{serial:04d}" for serial in range(10_000))

# The hot loop avoids enum attribute lookups and `.value` (each costs more than a random draw): members are
# bound to module names once, and turned into their plain strings through one dict.
_PU, _BPU, _JAKON, _PMI = Segment.PU, Segment.BPU, Segment.JAKON, Segment.PMI
_FEMALE, _MALE = Sex.FEMALE, Sex.MALE
_JKK, _JKM, _JHT, _JP, _JKP = Program.JKK, Program.JKM, Program.JHT, Program.JP, Program.JKP
_PROGRAMS = tuple(Program)
_TEXT: dict[str, str] = {
    member: member.value
    for enum in (Segment, Category, FundingSource, Sex, Program, EmployerSize, RiskLevel)
    for member in enum
}

# --- Output ------------------------------------------------------------------------------------------------


class LabelledRequest(NamedTuple):
    """A request and the reason codes the rules must find for it (none for a valid request)."""

    request: EnrollmentRequest
    expected: tuple[ReasonCode, ...]
    is_duplicate: bool = False

    @property
    def valid(self) -> bool:
        return not self.expected


class LabelledData(NamedTuple):
    """The same as `LabelledRequest`, with the request as a JSON-ready dict of `EnrollmentRequest` fields."""

    data: dict[str, Any]
    expected: tuple[ReasonCode, ...]
    is_duplicate: bool = False


def generate(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[LabelledRequest]:
    """`n` labelled requests (re-sends included in `n`). `region_codes` (any level) restricts where workers
    are enrolled; `today` is the date the rules will validate them on."""
    validate = EnrollmentRequest.model_validate
    # A re-send reuses the model of its first sending; only the last RECENT originals can be re-sent.
    models: OrderedDict[str, EnrollmentRequest] = OrderedDict()
    for item in generate_dicts(
        n,
        seed,
        today=today,
        invalid_share=invalid_share,
        duplicate_share=duplicate_share,
        regions=regions,
        region_codes=region_codes,
    ):
        request_id = item.data["request_id"]
        if item.is_duplicate:
            yield LabelledRequest(models[request_id], item.expected, is_duplicate=True)
            continue
        request = validate(item.data)
        if duplicate_share:
            models[request_id] = request
            if len(models) > RECENT:
                models.popitem(last=False)
        yield LabelledRequest(request, item.expected)


def generate_json(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[bytes]:
    """The requests alone as compact UTF-8 JSON, in the same sequence as `generate` for the same seed."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for item in generate_dicts(
        n,
        seed,
        today=today,
        invalid_share=invalid_share,
        duplicate_share=duplicate_share,
        regions=regions,
        region_codes=region_codes,
    ):
        yield dumps(item.data).encode()


def generate_dicts(  # noqa: PLR0913 - keyword-only knobs with defaults, as the tests and benches use them
    n: int,
    seed: int,
    *,
    today: date,
    invalid_share: float = 0.0,
    duplicate_share: float = 0.0,
    regions: Regions | None = None,
    region_codes: Iterable[str] | None = None,
) -> Iterator[LabelledData]:
    """The fast path: labelled JSON-ready dicts that validate into the requests of `generate`.

    A re-send shares its original's dict: treat the dicts as read-only.
    """
    if not 0.0 <= invalid_share <= 1.0 or not 0.0 <= duplicate_share < 1.0:
        raise ValueError("invalid_share must be in [0, 1] and duplicate_share in [0, 1)")
    world = _World(regions if regions is not None else load_regions(), region_codes)
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not secrets
    maker = _Maker(world, rng, seed, today)
    random_ = rng.random
    recent: list[LabelledData] = []  # the last RECENT originals, among which a re-send is picked
    originals = 0
    for index in range(n):
        if recent and random_() < duplicate_share:
            original = recent[int(random_() * len(recent))]
            yield LabelledData(original.data, original.expected, is_duplicate=True)
            continue
        item = maker.make(index, invalid=random_() < invalid_share)
        if duplicate_share:
            if len(recent) < RECENT:
                recent.append(item)
            else:
                recent[originals % RECENT] = item
            originals += 1
        yield item


#: A re-send repeats one of the last RECENT original requests, as a partner's retry would.
RECENT = 1024

# --- Building a request ------------------------------------------------------------------------------------


class _Regency:
    __slots__ = ("code", "digits", "kecamatan", "province", "unknown_kecamatan")

    def __init__(self, code: str, kecamatan: tuple[str, ...], unknown_kecamatan: str) -> None:
        self.code = code
        self.province = code[:2]
        self.kecamatan = kecamatan
        self.digits = tuple(k.replace(".", "") for k in kecamatan)  # the NIK's first six digits
        self.unknown_kecamatan = unknown_kecamatan


class _World:
    """The regencies/cities to draw from, with cumulative population weights for a bisect."""

    def __init__(self, regions: Regions, region_codes: Iterable[str] | None) -> None:
        wanted = None if region_codes is None else frozenset(region_codes)
        self.regencies: list[_Regency] = []
        self.cumulative: list[float] = []
        total = 0.0
        for region in sorted(regions.at_level("regency/city"), key=lambda r: r.code):
            if wanted is not None and not any(a.code in wanted for a in regions.ancestors(region.code)):
                continue
            kecamatan = tuple(k.code for k in regions.children(region.code) if k.level == "kecamatan")
            if not kecamatan:
                continue
            population = regions.population(region.code)
            total += population.total if population is not None and population.total > 0 else 1
            self.cumulative.append(total)
            self.regencies.append(_Regency(region.code, kecamatan, _unused(regions, region.code, range(99, 0, -1))))
        if not self.regencies:
            raise ValueError("no regency/city with kecamatan matches region_codes")
        self.total = total
        self.unknown_regency = {
            province: _unused(regions, province, range(69, 0, -1)) for province in {r.province for r in self.regencies}
        }


def _unused(regions: Regions, parent: str, numbers: Iterable[int]) -> str:
    """A well-formed child code of `parent` that is no region: for requests that must name an unknown one."""
    for number in numbers:
        code = f"{parent}.{number:02d}"
        if code not in regions:
            return code
    raise ValueError(f"{parent} has every child code in use")


class _Kind:
    """A profile prepared for the hot loop: cumulative funding weights and plain values."""

    __slots__ = ("ages", "category", "female_share", "funding_cumulative", "funding_sources", "segment")

    def __init__(self, profile: Profile) -> None:
        self.segment = profile.segment
        self.category = profile.category
        self.funding_cumulative = list(itertools.accumulate(w for _, w in profile.funding))
        self.funding_sources = [f for f, _ in profile.funding]
        self.ages = profile.ages
        self.female_share = profile.female_share


class _Draft:
    """A request being built, kept mutable (for the mutations) until it becomes its dict."""

    __slots__ = (
        "birth",
        "category",
        "contract_months",
        "contract_value",
        "coverage_start",
        "declared_income",
        "domicile",
        "employer",
        "funding",
        "kecamatan",
        "monthly_wage",
        "nik",
        "programs",
        "regency",
        "region_code",
        "segment",
        "serial",
        "sex",
    )

    birth: date
    category: Category
    coverage_start: date
    domicile: str | None
    funding: FundingSource
    kecamatan: str
    nik: str
    programs: list[Program]
    regency: _Regency
    region_code: str
    segment: Segment
    serial: int
    sex: Sex

    def __init__(self) -> None:
        self.employer: dict[str, str] | None = None
        self.monthly_wage: int | None = None
        self.declared_income: int | None = None
        self.contract_value: int | None = None
        self.contract_months: int | None = None

    def renik(self) -> None:
        """Re-encode the NIK after a change of birth date, so that only the intended rule breaks."""
        self.nik = format_nik(self.kecamatan, self.birth, self.sex, self.serial)


class _Maker:
    def __init__(self, world: _World, rng: random.Random, seed: int, today: date) -> None:
        self.world = world
        self.rng = rng
        self.random = rng.random
        self.seed = seed
        self.today = today
        self.today_ordinal = today.toordinal()
        # NIKs handed out (as ints: half the memory of strings), so that no two workers share one.
        self.issued: set[int] = set()
        self.births: dict[int, tuple[date, str, str]] = {}
        # Coverage starts from two weeks back to a month ahead, well inside the rules' window.
        self.starts = {o: date.fromordinal(o) for o in range(self.today_ordinal - 14, self.today_ordinal + 31)}
        self.iso: dict[date, str] = {}
        self.kinds = [_Kind(p) for p in PROFILES]
        self.kind_cumulative = list(itertools.accumulate(p.weight for p in PROFILES))
        # JKP only well below its age limit, so that a shifted coverage start cannot cross it.
        self.jkp_max_age_days = (DEFAULT_LIMITS.jkp_age_limit - 1.5) * _DAYS_PER_YEAR
        # The PU program table the rules use (rates.toml), per employer size, in program order.
        table = load_rate_table().programs.pu
        self.pu_programs = {
            size: (
                [p for p in _PROGRAMS if p in table.for_size(size).mandatory],
                [p for p in _PROGRAMS if p in table.for_size(size).optional and p is not _JKP],
            )
            for size in EmployerSize
        }

    def make(self, index: int, *, invalid: bool) -> LabelledData:
        draft = self.draft()
        expected = self.spoil(draft) if invalid else ()
        return LabelledData(self.to_dict(draft, index), expected)

    def draft(self) -> _Draft:
        """A valid request's facts, drawn from the mix."""
        random_ = self.random
        world = self.world
        d = _Draft()

        regency = world.regencies[bisect.bisect_right(world.cumulative, random_() * world.total)]
        d.regency = regency
        d.region_code = regency.code
        at = int(random_() * len(regency.kecamatan))
        d.kecamatan = regency.kecamatan[at]
        roll = random_()
        if roll < 0.7:  # most live where their NIK was first issued
            d.domicile = d.kecamatan
        elif roll < 0.9:
            d.domicile = regency.kecamatan[int(random_() * len(regency.kecamatan))]
        else:
            d.domicile = None

        kind = self.kinds[bisect.bisect_right(self.kind_cumulative, random_() * self.kind_cumulative[-1])]
        d.segment = segment = kind.segment
        d.category = kind.category
        cumulative = kind.funding_cumulative
        d.funding = kind.funding_sources[bisect.bisect_right(cumulative, random_() * cumulative[-1])]
        female = random_() < kind.female_share
        d.sex = _FEMALE if female else _MALE

        start = self.today_ordinal + int(random_() * 45) - 14
        d.coverage_start = self.starts[start]
        low, high, mode = kind.ages
        age_days = int(self.rng.triangular(low, high + 1, mode) * _DAYS_PER_YEAR)
        born = self.births.get(start - age_days) or self._birth(start - age_days)
        d.birth = born[0]

        if segment is _PU:
            self._pu(d, jkp_age=age_days < self.jkp_max_age_days)
        elif segment is _BPU:
            self._bpu(d)
        elif segment is _JAKON:
            self._jakon(d)
        else:
            d.contract_months = _PMI_MONTHS[int(random_() * len(_PMI_MONTHS))]
            d.programs = [_JKK, _JKM, _JHT] if random_() < 0.1 else [_JKK, _JKM]
        self._nik(d, regency.digits[at] + (born[2] if female else born[1]))
        return d

    def _birth(self, ordinal: int) -> tuple[date, str, str]:
        """A birth date with its NIK digits for a man and for a woman, formatted once: some 17,000 dates
        recur across a million requests."""
        born = date.fromordinal(ordinal)
        month_year = f"{born.month:02d}{born.year % 100:02d}"
        self.births[ordinal] = entry = (
            born,
            f"{born.day:02d}{month_year}",
            f"{born.day + 40:02d}{month_year}",
        )
        return entry

    def _nik(self, d: _Draft, head: str) -> None:
        """The NIK from its first twelve digits (region and birth date) and a fresh serial."""
        serial = 1 + int(self.random() * 4999)  # serials count up from 0001: low ones are the common ones
        nik = head + _SERIALS[serial]
        key = int(nik)
        issued = self.issued
        if key in issued:
            while key in issued:  # same kecamatan, birth date and sex: the next serial, as Dukcapil does
                serial = serial % 9999 + 1
                key = key - key % 10_000 + serial
            nik = f"{key:016d}"
        issued.add(key)
        d.serial = serial
        d.nik = nik

    def _bpu(self, d: _Draft) -> None:
        random_ = self.random
        vulnerable = d.category is Category.VULNERABLE
        if vulnerable and random_() < 0.88:
            d.declared_income = 1_000_000  # the standard package for pekerja rentan
        else:
            d.declared_income = _BPU_INCOMES[int(random_() * len(_BPU_INCOMES))]
        d.programs = [_JKK, _JKM, _JHT] if random_() < (0.08 if vulnerable else 0.3) else [_JKK, _JKM]

    def _jakon(self, d: _Draft) -> None:
        random_ = self.random
        d.employer = self._employer(_SIZES[1 + int(random_() * 3)])  # small, medium or large contractors
        d.employer["jkk_risk"] = "HIGH" if random_() < 0.6 else "VERY_HIGH"
        # Project values from tens of millions to tens of billions of Rupiah, median about 650 million.
        d.contract_value = max(50_000_000, int(round(self.rng.lognormvariate(20.3, 1.2), -6)))
        d.contract_months = 3 + int(random_() * 22)
        d.programs = [_JKK, _JKM]

    def _employer(self, size: EmployerSize) -> dict[str, str]:
        random_ = self.random
        return {
            "registration_number": f"{int(random_() * 100_000_000):08d}",
            "size": _TEXT[size],
            "jkk_risk": _TEXT[_RISKS[bisect.bisect_right(_RISK_CUMULATIVE, random_())]],
        }

    def _pu(self, d: _Draft, *, jkp_age: bool) -> None:
        random_ = self.random
        if d.category is Category.NON_ASN_STAFF:
            # The region's own government is the employer: one registration number per regency/city.
            size = EmployerSize.LARGE
            d.employer = {
                "registration_number": f"PEMDA-{d.region_code.replace('.', '')}",
                "size": "LARGE",
                "jkk_risk": "VERY_LOW",
            }
            d.monthly_wage = int(round(1_200_000 + random_() * 3_800_000, -3))
        else:
            size = _SIZES[bisect.bisect_right(_SIZE_CUMULATIVE, random_())]
            d.employer = self._employer(size)
            # Median about Rp4.4 million a month.
            d.monthly_wage = max(1_500_000, min(40_000_000, int(round(self.rng.lognormvariate(15.3, 0.5), -3))))
        mandatory, optionals = self.pu_programs[size]
        chosen = set(mandatory)
        chosen.update(p for p in optionals if random_() < 0.4)
        # JKP needs JHT, and JP where the employer is medium or large (mandatory there anyway).
        if jkp_age and d.category is Category.FORMAL_EMPLOYEE and _JHT in chosen and random_() < 0.7:
            chosen.add(_JKP)
        d.programs = [p for p in _PROGRAMS if p in chosen]

    # --- Spoiling a request on purpose ---------------------------------------------------------------------

    def spoil(self, d: _Draft) -> tuple[ReasonCode, ...]:
        """Break one rule (and, one time in four, a second independent one); return the codes expected."""
        random_ = self.random
        applicable = [m for m in _MUTATIONS if m.applies(d)]
        first = applicable[int(random_() * len(applicable))]
        codes = [first.apply(self, d)]
        if random_() < 0.25:
            seconds = [m for m in _SECONDARY if m.group != first.group and m.applies(d)]
            if seconds:
                codes.append(seconds[int(random_() * len(seconds))].apply(self, d))
        return tuple(sorted(codes))

    def to_dict(self, d: _Draft, index: int) -> dict[str, Any]:
        name = self._name(d.sex)
        worker: dict[str, Any] = {
            "nik": d.nik,
            "full_name": name,
            "birth_date": self._iso(d.birth),
            "sex": _TEXT[d.sex],
        }
        if d.domicile is not None:
            worker["domicile_kecamatan"] = d.domicile
        self._contact(worker, name, index)
        data: dict[str, Any] = {
            "request_id": f"syn-{self.seed}-{index:08d}",
            "worker": worker,
            "region_code": d.region_code,
            "segment": _TEXT[d.segment],
            "category": _TEXT[d.category],
            "programs": [_TEXT[p] for p in d.programs],
            "funding_source": _TEXT[d.funding],
            "coverage_start": self._iso(d.coverage_start),
        }
        # Only the fields a segment uses are present, as a partner system would send them.
        if d.employer is not None:
            data["employer"] = d.employer
        if d.monthly_wage is not None:
            data["monthly_wage"] = d.monthly_wage
        if d.declared_income is not None:
            data["declared_income"] = d.declared_income
        if d.contract_value is not None:
            data["contract_value"] = d.contract_value
        if d.contract_months is not None:
            data["contract_months"] = d.contract_months
        return data

    def _iso(self, day: date) -> str:
        text = self.iso.get(day)
        if text is None:
            text = self.iso[day] = day.isoformat()
        return text

    def _contact(self, worker: dict[str, Any], name: str, index: int) -> None:
        """Two workers in three give a phone number, one in five an e-mail; most of them consent."""
        roll = self.random()
        if roll < 0.65:
            worker["phone"] = f"+628{int(self.random() * 1_000_000_000):09d}"
            if roll < 0.2:
                worker["email"] = f"{name.split(' ', 1)[0].lower()}{index}@example.com"
            worker["contact_consent"] = roll < 0.5

    def _name(self, sex: Sex) -> str:
        random_ = self.random
        names = FEMALE_NAMES if sex is _FEMALE else MALE_NAMES
        given = names[int(random_() * len(names))]
        roll = random_()
        if roll < 0.25:
            return given  # many Indonesians have a single name
        if roll < 0.45:
            return f"{given} {names[int(random_() * len(names))]}"
        return f"{given} {FAMILY_NAMES[int(random_() * len(FAMILY_NAMES))]}"


_RISK_CUMULATIVE = list(itertools.accumulate(_RISK_WEIGHTS))[:-1]
_SIZE_CUMULATIVE = list(itertools.accumulate(_SIZE_WEIGHTS))[:-1]


# --- Mutations: each breaks exactly one rule ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mutation:
    code: ReasonCode
    group: str  # at most one mutation per group, so that two never interact
    segments: frozenset[Segment]
    change: Callable[[_Maker, _Draft], None]
    condition: Callable[[_Draft], bool] | None = None

    def applies(self, d: _Draft) -> bool:
        return d.segment in self.segments and (self.condition is None or self.condition(d))

    def apply(self, maker: _Maker, d: _Draft) -> ReasonCode:
        self.change(maker, d)
        return self.code


_ALL = frozenset(Segment)


def _nik_length(m: _Maker, d: _Draft) -> None:
    d.nik = d.nik[:-1] if m.rng.random() < 0.5 else d.nik + "1"


def _nik_not_digits(m: _Maker, d: _Draft) -> None:
    at = int(m.rng.random() * 16)
    # No whitespace: a file reader may rightly trim it, which would turn this into a length error.
    d.nik = d.nik[:at] + m.rng.choice("OIl-.") + d.nik[at + 1 :]


def _nik_birth_date_invalid(m: _Maker, d: _Draft) -> None:
    ddmm = m.rng.choice(("3204", "0005", "0000", "7213", "3104", "7104", "3002", "1513", "4000"))
    d.nik = d.nik[:6] + ddmm + d.nik[10:]


def _nik_serial_zero(_: _Maker, d: _Draft) -> None:
    d.nik = d.nik[:12] + "0000"


def _nik_birth_date_mismatch(m: _Maker, d: _Draft) -> None:
    stated = d.birth
    d.birth = stated + timedelta(days=1 + int(m.rng.random() * 20))
    d.renik()  # the NIK now encodes another day...
    d.birth = stated  # ...than the one stated


def _nik_sex_mismatch(_: _Maker, d: _Draft) -> None:
    d.sex = Sex.MALE if d.sex is Sex.FEMALE else Sex.FEMALE


def _region_unknown(m: _Maker, d: _Draft) -> None:
    d.region_code = m.world.unknown_regency[d.regency.province]


def _region_not_regency_city(m: _Maker, d: _Draft) -> None:
    d.region_code = d.regency.province if m.rng.random() < 0.5 else d.kecamatan


def _kecamatan_unknown(m: _Maker, d: _Draft) -> None:
    d.domicile = d.regency.unknown_kecamatan if m.rng.random() < 0.7 else d.regency.code


def _age_below_working(m: _Maker, d: _Draft) -> None:
    d.birth = d.coverage_start - timedelta(days=int((5 + m.rng.random() * 8.5) * 365.2425))
    d.renik()


def _jkp_age_above_limit(m: _Maker, d: _Draft) -> None:
    d.birth = d.coverage_start - timedelta(days=int((56 + m.rng.random() * 7) * 365.2425))
    d.renik()
    d.programs = [_JKK, _JKM, _JHT, _JP, _JKP]


def _jkp_eligible_age(d: _Draft) -> bool:
    return age_on(d.birth, d.coverage_start) + 1 < DEFAULT_LIMITS.jkp_age_limit


def _jkp_prerequisite_missing(_: _Maker, d: _Draft) -> None:
    assert d.employer is not None  # noqa: S101 - every PU draft has an employer until a mutation drops it
    d.employer["size"] = _TEXT[EmployerSize.MICRO]
    d.programs = [_JKK, _JKM, _JKP]


def _program_not_offered(_: _Maker, d: _Draft) -> None:
    d.programs.append(_JHT if d.segment is Segment.JAKON else _JP)


def _program_mandatory_missing(_: _Maker, d: _Draft) -> None:
    d.programs.remove(_JKM)


def _program_duplicate(_: _Maker, d: _Draft) -> None:
    d.programs.append(_JKK)


def _employer_missing(_: _Maker, d: _Draft) -> None:
    d.employer = None


def _wage_missing(_: _Maker, d: _Draft) -> None:
    d.monthly_wage = None


def _income_missing(_: _Maker, d: _Draft) -> None:
    d.declared_income = None


def _income_below_minimum(m: _Maker, d: _Draft) -> None:
    d.declared_income = 1000 * int(100 + m.rng.random() * 899)


def _contract_value_missing(_: _Maker, d: _Draft) -> None:
    d.contract_value = None


def _contract_months_missing(_: _Maker, d: _Draft) -> None:
    d.contract_months = None


def _field_not_applicable(_: _Maker, d: _Draft) -> None:
    if d.segment is Segment.PU:
        d.declared_income = 1_000_000
    else:
        d.monthly_wage = 2_000_000


def _category_not_in_segment(m: _Maker, d: _Draft) -> None:
    others = sorted(c for c in Category if c not in CATEGORIES[d.segment])
    d.category = others[int(m.rng.random() * len(others))]


def _funding_not_allowed(m: _Maker, d: _Draft) -> None:
    allowed = FUNDING[(d.segment, d.category)]
    others = sorted(f for f in FundingSource if f not in allowed)
    d.funding = others[int(m.rng.random() * len(others))]


def _coverage_start_invalid(m: _Maker, d: _Draft) -> None:
    limits = DEFAULT_LIMITS
    if m.rng.random() < 0.5:
        d.coverage_start = m.today + timedelta(days=limits.max_future_days + 1 + int(m.rng.random() * 60))
    else:
        d.coverage_start = m.today - timedelta(days=limits.max_backdate_days + 1 + int(m.rng.random() * 200))


_ONLY_PU = frozenset({Segment.PU})
_ONLY_BPU = frozenset({Segment.BPU})

_MUTATIONS: tuple[_Mutation, ...] = (
    _Mutation(R.NIK_LENGTH, "nik", _ALL, _nik_length),
    _Mutation(R.NIK_NOT_DIGITS, "nik", _ALL, _nik_not_digits),
    _Mutation(R.NIK_BIRTH_DATE_INVALID, "nik", _ALL, _nik_birth_date_invalid),
    _Mutation(R.NIK_SERIAL_ZERO, "nik", _ALL, _nik_serial_zero),
    _Mutation(R.NIK_BIRTH_DATE_MISMATCH, "nik", _ALL, _nik_birth_date_mismatch),
    _Mutation(R.NIK_SEX_MISMATCH, "nik", _ALL, _nik_sex_mismatch),
    _Mutation(R.REGION_UNKNOWN, "region", _ALL, _region_unknown),
    _Mutation(R.REGION_NOT_REGENCY_CITY, "region", _ALL, _region_not_regency_city),
    _Mutation(R.KECAMATAN_UNKNOWN, "kecamatan", _ALL, _kecamatan_unknown),
    _Mutation(R.AGE_BELOW_WORKING, "age", _ALL, _age_below_working),
    _Mutation(R.AGE_ABOVE_LIMIT, "age", _ONLY_PU, _jkp_age_above_limit),
    _Mutation(R.CATEGORY_NOT_IN_SEGMENT, "category", _ALL, _category_not_in_segment),
    _Mutation(
        R.PROGRAM_NOT_OFFERED,
        "programs",
        frozenset({Segment.BPU, Segment.JAKON, Segment.PMI}),
        _program_not_offered,
    ),
    _Mutation(R.PROGRAM_MANDATORY_MISSING, "programs", _ALL, _program_mandatory_missing),
    _Mutation(R.PROGRAM_DUPLICATE, "programs", _ALL, _program_duplicate),
    _Mutation(R.JKP_PREREQUISITE_MISSING, "programs", _ONLY_PU, _jkp_prerequisite_missing, _jkp_eligible_age),
    _Mutation(R.EMPLOYER_MISSING, "employer", frozenset({Segment.PU, Segment.JAKON}), _employer_missing),
    _Mutation(R.WAGE_MISSING, "money", _ONLY_PU, _wage_missing),
    _Mutation(R.INCOME_MISSING, "money", _ONLY_BPU, _income_missing),
    _Mutation(R.INCOME_BELOW_MINIMUM, "money", _ONLY_BPU, _income_below_minimum),
    _Mutation(R.CONTRACT_VALUE_MISSING, "money", frozenset({Segment.JAKON}), _contract_value_missing),
    _Mutation(R.CONTRACT_MONTHS_MISSING, "money", frozenset({Segment.PMI}), _contract_months_missing),
    _Mutation(R.FIELD_NOT_APPLICABLE, "extra", frozenset({Segment.PU, Segment.BPU}), _field_not_applicable),
    _Mutation(R.FUNDING_NOT_ALLOWED, "funding", _ALL, _funding_not_allowed),
    _Mutation(R.COVERAGE_START_INVALID, "coverage", _ALL, _coverage_start_invalid),
)

# Mutations that leave every other rule alone whatever was broken first: candidates for a second break.
_SECONDARY: tuple[_Mutation, ...] = tuple(
    m
    for m in _MUTATIONS
    if m.code
    in {
        R.NIK_SEX_MISMATCH,
        R.REGION_UNKNOWN,
        R.REGION_NOT_REGENCY_CITY,
        R.KECAMATAN_UNKNOWN,
        R.PROGRAM_DUPLICATE,
        R.WAGE_MISSING,
        R.INCOME_MISSING,
        R.INCOME_BELOW_MINIMUM,
        R.CONTRACT_VALUE_MISSING,
        R.CONTRACT_MONTHS_MISSING,
        R.COVERAGE_START_INVALID,
    }
)

#: The codes the generator can label a request with.
GENERATED_CODES: frozenset[ReasonCode] = frozenset(m.code for m in _MUTATIONS)
