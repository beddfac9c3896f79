"""Kubernetes resource quantities (`500m`, `1Gi`, `1e3`), parsed exactly as the API server does.

The rules are those of `ParseQuantity` and `parseQuantityString` in k8s.io/apimachinery
pkg/api/resource/quantity.go: an optional sign, digits with an optional fraction, then a suffix
that is empty, a binary SI suffix (Ki Mi Gi Ti Pi Ei: powers of 1024), a decimal SI suffix (n u m
k M G T P E: powers of 1000) or a decimal exponent (`e3`, `E-2`). Everything else (`1GB`, `1gi`,
`1 Gi`, `1K`) is refused with "quantities must match the regular expression ...". The scanner is
followed step by step, quirks included: `-`, `+` and `.` alone parse as zero, `1.` is allowed.

`parse` returns the value as a `Fraction` (exact, so `requests <= limits` compares exactly as
the API server's `Quantity.Cmp` does) or None when the text is not a quantity.
"""

from __future__ import annotations

import functools
from fractions import Fraction

# The suffixes of quantitySuffixer.interpret (quantity suffixes in suffix.go), as multipliers.
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30),
    "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9),
    "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")  # what parseQuantityString lets into a suffix
_DIGITS = frozenset("0123456789")
# ParseQuantity caps every value at the largest int64 ("the max is just a simple cap"); an
# exponent is read with strconv.ParseInt(..., 10, 64). Exponents are clamped before building the
# Fraction so that `1e999999999` costs nothing (the cap makes the result the same).
_MAX_VALUE = Fraction(2**63 - 1)
_MAX_INT64 = 2**63 - 1
_EXPONENT_CLAMP = 40
QUANTITY_HINT = (
    "a quantity is a number with an optional suffix: Ki Mi Gi Ti Pi Ei (powers of 1024), "
    "n u m k M G T P E (powers of 1000) or an exponent like e3; e.g. 500m, 1.5, 256Mi, 1G, 1e3 "
    "(not 1GB or 1gi)"
)


def _split(text: str) -> tuple[str, str, str, str] | None:
    """(sign, integer digits, fraction digits, suffix) as parseQuantityString scans them."""
    end = len(text)
    pos = 0
    sign = ""
    if text[0] in "+-":
        sign = text[0] if text[0] == "-" else ""
        pos = 1
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    whole = text[start:pos]
    fraction = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        fraction = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos != end:
        return None  # "we encountered a non decimal in the Suffix loop"
    return sign, whole, fraction, text[suffix_start:]


def _multiplier(suffix: str) -> Fraction | None:
    found = _SUFFIXES.get(suffix)
    if found is not None:
        return found
    # A decimal exponent: "e" or "E" followed by a signed integer (interpret() in suffix.go).
    if len(suffix) > 1 and suffix[0] in "eE":
        rest = suffix[1:]
        digits = rest[1:] if rest[0] in "+-" else rest
        if digits and all(c in _DIGITS for c in digits) and int(digits) <= _MAX_INT64:
            exponent = max(-_EXPONENT_CLAMP, min(_EXPONENT_CLAMP, int(rest)))
            return Fraction(10) ** exponent
    return None


# A repo spells few distinct quantities ("100m", "64Mi") many times: parse each once.
@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Fraction | None:
    """The value of a quantity written as text, or None if the API server would refuse it."""
    if not text:
        return None  # ErrFormatEmpty
    parts = _split(text)
    if parts is None:
        return None
    sign, whole, fraction, suffix = parts
    multiplier = _multiplier(suffix)
    if multiplier is None:
        return None
    value = Fraction(int(whole or "0")) + (Fraction(int(fraction), 10 ** len(fraction)) if fraction else 0)
    value = min(value * multiplier, _MAX_VALUE)
    return -value if sign == "-" else value


def value_of(raw: object) -> Fraction | None:
    """A quantity field's value as read from YAML: a string, or a JSON number (which the API
    server also accepts for a quantity); None when it is neither or does not parse."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return Fraction(raw)
    if isinstance(raw, float):
        return Fraction(raw) if raw == raw and raw not in (float("inf"), float("-inf")) else None
    if isinstance(raw, str):
        return parse(raw)
    return None
