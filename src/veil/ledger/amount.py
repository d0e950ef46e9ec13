"""Money amounts: non-negative integers of the smallest unit; decimal strings for people.

One VEIL is 10**9 units. There are no floats anywhere in money: parsing splits the decimal
string and works on integers only.
"""

from __future__ import annotations

from veil.errors import UsageError

DECIMALS = 9
UNIT = 10**DECIMALS
MAX_AMOUNT = 2**63 - 1  # fits SQLite's INTEGER and CBOR's unsigned int
SYMBOL = "VEIL"


class AmountError(UsageError):
    """That amount cannot be used: amounts are positive decimals with at most 9 places, like 12.5."""


def parse_amount(text: str) -> int:
    """``"12.5"`` -> 12_500_000_000. Rejects signs, exponents, >9 decimals and overflow."""
    s = text.strip().replace("_", "")
    if s.upper().endswith(SYMBOL):
        s = s[: -len(SYMBOL)].strip()
    whole, dot, frac = s.partition(".")
    if not whole and not frac:
        raise AmountError(f"not an amount: {text!r}")
    if not (whole == "" or (whole.isascii() and whole.isdigit())) or not (frac == "" or (frac.isascii() and frac.isdigit())):
        raise AmountError(f"not an amount (digits and one '.' only): {text!r}")
    if dot and not frac:
        raise AmountError(f"not an amount (nothing after the '.'): {text!r}")
    if len(frac) > DECIMALS:
        raise AmountError(f"at most {DECIMALS} decimal places: {text!r}")
    if len(whole) > 20:
        raise AmountError(f"amount too large: {text!r}")
    value: int = int(whole or "0") * UNIT + int((frac or "0").ljust(DECIMALS, "0"))
    if value > MAX_AMOUNT:
        raise AmountError(f"amount too large: {text!r}")
    return value


def format_amount(value: int) -> str:
    """12_500_000_000 -> ``"12.5"``; exact for every integer."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), UNIT)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + str(frac).rjust(DECIMALS, "0").rstrip("0")
