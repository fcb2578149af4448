"""A finding of the rules: what is wrong (or noteworthy) with a request, and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.reasons import ReasonCode, Severity, rejection

if TYPE_CHECKING:
    from shared.events import RejectionReason


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule. `field` is the dotted request field at fault; `subject` says what exactly is wrong (a
    program, a NIK character position, a region code) and `limit` the threshold or allowed values it broke.
    Both are language-neutral and never hold a NIK: they are shown to partners and may be logged."""

    code: ReasonCode
    field: str | None = None
    subject: str | None = None
    limit: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.code.severity is Severity.WARNING

    def to_rejection(self) -> RejectionReason:
        return rejection(self.code, self.field, self.subject, self.limit)
