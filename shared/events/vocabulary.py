"""The vocabulary shared by every event: segments, programs, funders and the other closed sets of the domain."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field


class Segment(StrEnum):
    """Participant segment (kepesertaan)."""

    PU = "PU"  # Penerima Upah: wage earners, incl. non-ASN government staff
    BPU = "BPU"  # Bukan Penerima Upah: informal and self-employed; pekerja rentan are enrolled here
    JAKON = "JAKON"  # Jasa Konstruksi: construction project workers
    PMI = "PMI"  # Pekerja Migran Indonesia: migrant workers


class Category(StrEnum):
    """Who the worker is within a segment; drives funding rules and reporting."""

    FORMAL_EMPLOYEE = "FORMAL_EMPLOYEE"
    NON_ASN_STAFF = "NON_ASN_STAFF"  # pegawai pemerintah non-ASN
    INFORMAL = "INFORMAL"
    VULNERABLE = "VULNERABLE"  # pekerja rentan
    CONSTRUCTION = "CONSTRUCTION"
    MIGRANT = "MIGRANT"


class Program(StrEnum):
    JKK = "JKK"  # Jaminan Kecelakaan Kerja: work accident
    JKM = "JKM"  # Jaminan Kematian: death
    JHT = "JHT"  # Jaminan Hari Tua: old-age savings
    JP = "JP"  # Jaminan Pensiun: pension
    JKP = "JKP"  # Jaminan Kehilangan Pekerjaan: job-loss benefit


class FundingSource(StrEnum):
    """Who pays the worker's share (or the whole contribution for BPU)."""

    SELF = "SELF"
    EMPLOYER = "EMPLOYER"
    APBD = "APBD"  # regional government budget
    APBN = "APBN"  # national budget
    APBDES = "APBDES"  # village budget
    CSR = "CSR"
    ZAKAT = "ZAKAT"  # BAZNAS and other zakat bodies


class Payer(StrEnum):
    """Who actually transfers a contribution each month."""

    EMPLOYER = "EMPLOYER"
    WORKER = "WORKER"
    FUNDER = "FUNDER"  # the funding source named on the participant (APBD, CSR, ...)
    CENTRAL_GOVERNMENT = "CENTRAL_GOVERNMENT"  # the JKP share paid by the state


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class EmployerSize(StrEnum):
    MICRO = "MICRO"
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"


class RiskLevel(StrEnum):
    """JKK risk class of the workplace (PP 44/2015 art. 16)."""

    VERY_LOW = "VERY_LOW"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    VERY_HIGH = "VERY_HIGH"


class TerminationReason(StrEnum):
    RESIGNED = "RESIGNED"
    DISMISSED = "DISMISSED"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    RETIRED = "RETIRED"
    DECEASED = "DECEASED"
    MOVED = "MOVED"
    STOPPED_PAYING = "STOPPED_PAYING"
    OTHER = "OTHER"


class AgeBand(StrEnum):
    UNDER_20 = "15-19"
    FROM_20 = "20-29"
    FROM_30 = "30-39"
    FROM_40 = "40-49"
    FROM_50 = "50-59"
    FROM_60 = "60+"


class RequestAction(StrEnum):
    ENROLL = "ENROLL"
    UPDATE = "UPDATE"
    TERMINATE = "TERMINATE"
    REACTIVATE = "REACTIVATE"


class ParticipantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    TERMINATED = "TERMINATED"


Rupiah = Annotated[int, Field(ge=0, description="Indonesian Rupiah, whole units")]
RegionCode = Annotated[str, Field(pattern=r"^\d{2}(\.\d{2}(\.\d{2})?)?$", examples=["32.71"])]
RequestId = Annotated[str, Field(min_length=1, max_length=128, description="The partner's own id, unique per partner")]
