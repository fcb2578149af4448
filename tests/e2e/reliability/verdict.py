"""The verdict: what the verification found, counted per place; and the scan for NIKs in clear."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shared.privacy import NIK_PATTERN, mask_nik

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass
class Verdict:
    """What the verification found, counted per place, with a few examples each."""

    lost: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    mismatches: Counter[str] = field(default_factory=Counter)
    leaks: Counter[str] = field(default_factory=Counter)  # the inputs' NIKs found in clear
    nik_shaped: Counter[str] = field(default_factory=Counter)  # any 16-digit run (hashes left out)
    problems: list[str] = field(default_factory=list)  # faults not ridden out: health, exits, recovery
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    checks: list[str] = field(default_factory=list)  # what was checked and what was seen, for the report
    # The notification ledger's final statuses per class of recipient (see verification.recipient_class).
    recipients: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, kind: Literal["lost", "doubled", "mismatches"], where: str, items: Iterable[str]) -> None:
        found = list(items)
        getattr(self, kind)[where] += len(found)
        self.examples[f"{kind}: {where}"].extend(found[:5])

    @property
    def clean(self) -> bool:
        return not (
            self.lost.total()
            or self.doubled.total()
            or self.mismatches.total()
            or self.leaks.total()
            or self.nik_shaped.total()
            or self.problems
        )


# --- Verification: personal data ----------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d{15,}")
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")  # keyed hashes: hex may hold a run of 16 decimal digits by chance


def masked(text: str) -> str:
    """A finding as the report may show it: the NIK found is masked there too."""
    return re.sub(r"\d{15,17}", lambda m: mask_nik(m.group()), text)


def scan(texts: Iterable[str], niks: frozenset[str]) -> tuple[int, int, list[str]]:
    """(input NIKs found in clear, 16-digit runs outside hashes, examples). The NIKs of the inputs include
    the invalid ones (15 to 17 digits) that partners sent."""
    found = shaped = 0
    examples: list[str] = []
    for text in texts:
        for run in _DIGIT_RUN.finditer(text):
            digits = run.group()
            hits = {
                digits[i : i + n] for n in (15, 16, 17) for i in range(len(digits) - n + 1) if digits[i : i + n] in niks
            }
            if hits:
                found += 1
                examples.append(masked(text[max(0, run.start() - 80) : run.end() + 40]))
        shaped += len(NIK_PATTERN.findall(_HEX_RUN.sub("#", text)))
    return found, shaped, examples[:3]


def scan_into(verdict: Verdict, where: str, texts: Iterable[str], niks: frozenset[str]) -> None:
    found, shaped, examples = scan(texts, niks)
    verdict.leaks[where] += found
    verdict.nik_shaped[where] += shaped
    verdict.examples[f"NIK in clear: {where}"].extend(examples)
    verdict.checks.append(f"NIK scan, {where}: {found} input NIKs in clear, {shaped} other 16-digit runs")


def record_text(record: Any) -> str:
    headers = " ".join(f"{k}={v.decode('utf-8', 'replace')}" for k, v in record.headers or ())
    key = record.key.decode("utf-8", "replace") if record.key else ""
    return f"{key} {headers} {record.value.decode('utf-8', 'replace') if record.value else ''}"
