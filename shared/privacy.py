"""Personal-data protection shared by every service: the one NIK mask, the keyed hash, and a scrubber.

A NIK (Nomor Induk Kependudukan) is personal data under UU 27/2022: it never appears in clear outside the
intake topic. `mask_nik` is the only display form; `nik_hash` the only lookup/join form.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# 16 digits not embedded in a longer digit run: what a NIK looks like anywhere in free text.
NIK_PATTERN = re.compile(r"(?<!\d)\d{16}(?!\d)")


def mask_nik(nik: str) -> str:
    """`3271014506900001` -> `3271**********01`: region prefix and last two digits stay readable."""
    if len(nik) <= 6:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 6) + nik[-2:]


def nik_hash(nik: str, secret: bytes) -> str:
    """HMAC-SHA256 of the NIK with a deployment secret: stable for lookups, useless without the secret."""
    return hmac.new(secret, nik.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def scrub(text: str) -> str:
    """Mask every NIK-shaped run of digits in free text (log lines, error messages)."""
    return NIK_PATTERN.sub(lambda m: mask_nik(m.group(0)), text)
