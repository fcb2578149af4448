"""A finding of the rules: what is wrong (or noteworthy) with a request, and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.reasons import ReasonCode, Severity, rejection

if TYPE_CHECKING:
    from shared.events import RejectionReason


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule. `field` is the dotted request field at fault; `detail` is language-neutral and never
    holds a NIK (it is shown to partners and may be logged)."""

    code: ReasonCode
    field: str | None = None
    detail: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.code.severity is Severity.WARNING

    def to_rejection(self) -> RejectionReason:
        return rejection(self.code, self.field, self.detail)
