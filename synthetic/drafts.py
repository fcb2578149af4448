"""Building one valid request: the regencies/cities to draw from, a draft of the facts, and the maker.

The maker draws every fact from the mix (synthetic.mix) with one seeded `random.Random`, so the order of
draws is part of the output: a change here changes every request that follows from a seed.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import date
from typing import TYPE_CHECKING, Any

from services.registration.domain.contributions import load_rate_table
from services.registration.domain.nik import format_nik
from services.registration.domain.rules import DEFAULT_LIMITS
from shared.events import Category, EmployerSize, FundingSource, Program, Segment, Sex
from synthetic.mix import (
    BPU,
    BPU_INCOMES,
    DAYS_PER_YEAR,
    FAMILY_NAMES,
    FEMALE,
    FEMALE_NAMES,
    JAKON,
    JHT,
    JKK,
    JKM,
    JKP,
    MALE,
    MALE_NAMES,
    PMI_MONTHS,
    PROFILES,
    PROGRAMS,
    PU,
    RISK_CUMULATIVE,
    RISKS,
    SERIALS,
    SIZE_CUMULATIVE,
    SIZES,
    TEXT,
    Profile,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from shared.regions import Regions


class Regency:
    __slots__ = ("code", "digits", "kecamatan", "province", "unknown_kecamatan")

    def __init__(self, code: str, kecamatan: tuple[str, ...], unknown_kecamatan: str) -> None:
        self.code = code
        self.province = code[:2]
        self.kecamatan = kecamatan
        self.digits = tuple(k.replace(".", "") for k in kecamatan)  # the NIK's first six digits
        self.unknown_kecamatan = unknown_kecamatan


class World:
    """The regencies/cities to draw from, with cumulative population weights for a bisect."""

    def __init__(self, regions: Regions, region_codes: Iterable[str] | None) -> None:
        wanted = None if region_codes is None else frozenset(region_codes)
        self.regencies: list[Regency] = []
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
            self.regencies.append(Regency(region.code, kecamatan, _unused(regions, region.code, range(99, 0, -1))))
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


class Kind:
    """A profile prepared for the hot loop: cumulative funding weights and plain values."""

    __slots__ = ("ages", "category", "female_share", "funding_cumulative", "funding_sources", "segment")

    def __init__(self, profile: Profile) -> None:
        self.segment = profile.segment
        self.category = profile.category
        self.funding_cumulative = list(itertools.accumulate(w for _, w in profile.funding))
        self.funding_sources = [f for f, _ in profile.funding]
        self.ages = profile.ages
        self.female_share = profile.female_share


class Draft:
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
    regency: Regency
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


class Maker:
    def __init__(self, world: World, rng: random.Random, seed: int, today: date) -> None:
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
        self.kinds = [Kind(p) for p in PROFILES]
        self.kind_cumulative = list(itertools.accumulate(p.weight for p in PROFILES))
        # JKP only well below its age limit, so that a shifted coverage start cannot cross it.
        self.jkp_max_age_days = (DEFAULT_LIMITS.jkp_age_limit - 1.5) * DAYS_PER_YEAR
        # The PU program table the rules use (rates.toml), per employer size, in program order.
        table = load_rate_table().programs.pu
        self.pu_programs = {
            size: (
                [p for p in PROGRAMS if p in table.for_size(size).mandatory],
                [p for p in PROGRAMS if p in table.for_size(size).optional and p is not JKP],
            )
            for size in EmployerSize
        }

    def draft(self) -> Draft:
        """A valid request's facts, drawn from the mix."""
        random_ = self.random
        world = self.world
        d = Draft()

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
        d.sex = FEMALE if female else MALE

        start = self.today_ordinal + int(random_() * 45) - 14
        d.coverage_start = self.starts[start]
        low, high, mode = kind.ages
        age_days = int(self.rng.triangular(low, high + 1, mode) * DAYS_PER_YEAR)
        born = self.births.get(start - age_days) or self._birth(start - age_days)
        d.birth = born[0]

        if segment is PU:
            self._pu(d, jkp_age=age_days < self.jkp_max_age_days)
        elif segment is BPU:
            self._bpu(d)
        elif segment is JAKON:
            self._jakon(d)
        else:
            d.contract_months = PMI_MONTHS[int(random_() * len(PMI_MONTHS))]
            d.programs = [JKK, JKM, JHT] if random_() < 0.1 else [JKK, JKM]
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

    def _nik(self, d: Draft, head: str) -> None:
        """The NIK from its first twelve digits (region and birth date) and a fresh serial."""
        serial = 1 + int(self.random() * 4999)  # serials count up from 0001: low ones are the common ones
        nik = head + SERIALS[serial]
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

    def _bpu(self, d: Draft) -> None:
        random_ = self.random
        vulnerable = d.category is Category.VULNERABLE
        if vulnerable and random_() < 0.88:
            d.declared_income = 1_000_000  # the standard package for pekerja rentan
        else:
            d.declared_income = BPU_INCOMES[int(random_() * len(BPU_INCOMES))]
        d.programs = [JKK, JKM, JHT] if random_() < (0.08 if vulnerable else 0.3) else [JKK, JKM]

    def _jakon(self, d: Draft) -> None:
        random_ = self.random
        d.employer = self._employer(SIZES[1 + int(random_() * 3)])  # small, medium or large contractors
        d.employer["jkk_risk"] = "HIGH" if random_() < 0.6 else "VERY_HIGH"
        # Project values from tens of millions to tens of billions of Rupiah, median about 650 million.
        d.contract_value = max(50_000_000, int(round(self.rng.lognormvariate(20.3, 1.2), -6)))
        d.contract_months = 3 + int(random_() * 22)
        d.programs = [JKK, JKM]

    def _employer(self, size: EmployerSize) -> dict[str, str]:
        random_ = self.random
        return {
            "registration_number": f"{int(random_() * 100_000_000):08d}",
            "size": TEXT[size],
            "jkk_risk": TEXT[RISKS[bisect.bisect_right(RISK_CUMULATIVE, random_())]],
        }

    def _pu(self, d: Draft, *, jkp_age: bool) -> None:
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
            size = SIZES[bisect.bisect_right(SIZE_CUMULATIVE, random_())]
            d.employer = self._employer(size)
            # Median about Rp4.4 million a month.
            d.monthly_wage = max(1_500_000, min(40_000_000, int(round(self.rng.lognormvariate(15.3, 0.5), -3))))
        mandatory, optionals = self.pu_programs[size]
        chosen = set(mandatory)
        chosen.update(p for p in optionals if random_() < 0.4)
        # JKP needs JHT, and JP where the employer is medium or large (mandatory there anyway).
        if jkp_age and d.category is Category.FORMAL_EMPLOYEE and JHT in chosen and random_() < 0.7:
            chosen.add(JKP)
        d.programs = [p for p in PROGRAMS if p in chosen]

    # --- The request as a partner sends it -----------------------------------------------------------------

    def to_dict(self, d: Draft, index: int) -> dict[str, Any]:
        name = self._name(d.sex)
        worker: dict[str, Any] = {
            "nik": d.nik,
            "full_name": name,
            "birth_date": self._iso(d.birth),
            "sex": TEXT[d.sex],
        }
        if d.domicile is not None:
            worker["domicile_kecamatan"] = d.domicile
        self._contact(worker, name, index)
        data: dict[str, Any] = {
            "request_id": f"syn-{self.seed}-{index:08d}",
            "worker": worker,
            "region_code": d.region_code,
            "segment": TEXT[d.segment],
            "category": TEXT[d.category],
            "programs": [TEXT[p] for p in d.programs],
            "funding_source": TEXT[d.funding],
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
        names = FEMALE_NAMES if sex is FEMALE else MALE_NAMES
        given = names[int(random_() * len(names))]
        roll = random_()
        if roll < 0.25:
            return given  # many Indonesians have a single name
        if roll < 0.45:
            return f"{given} {names[int(random_() * len(names))]}"
        return f"{given} {FAMILY_NAMES[int(random_() * len(FAMILY_NAMES))]}"
