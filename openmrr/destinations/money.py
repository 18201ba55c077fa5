"""Money in the bodies we send: exact cents in, `100.00` out, never through a binary float.

The warehouse holds amounts as DECIMAL, which DuckDB hands to Python as `Decimal`. We turn each into
an integer number of cents (`Cents`) and write it back as text with exactly two decimals, so a JSON
number or a Slack line says `166.67`, never `166.66999999999999`. Python's `json` module can only
write numbers it knows (int, float), so `dumps` renders `Cents` itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True, order=True)
class Cents:
    """An amount as a whole number of hundredths of the currency unit."""

    value: int

    @classmethod
    def of(cls, amount: Decimal | int | float | str) -> Cents:
        """Cents of a unit amount; half away from zero if it has more than two decimals (never for DECIMAL(_,2))."""
        exact = amount if isinstance(amount, Decimal) else Decimal(str(amount))
        return cls(int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)))

    def __add__(self, other: Cents) -> Cents:
        return Cents(self.value + other.value)

    def __neg__(self) -> Cents:
        return Cents(-self.value)

    def __abs__(self) -> Cents:
        return Cents(abs(self.value))

    def text(self, thousands: bool = False, signed: bool = False) -> str:
        """`1234.50`, `1,234.50` with `thousands`, `+1,234.50` with `signed` (negatives always `-`)."""
        units, cents = divmod(abs(self.value), 100)
        sign = "-" if self.value < 0 else ("+" if signed and self.value > 0 else "")
        return f"{sign}{units:,}.{cents:02d}" if thousands else f"{sign}{units}.{cents:02d}"


def cents_or_none(amount: Decimal | int | float | None) -> Cents | None:
    return None if amount is None else Cents.of(amount)


def _encode(value: object) -> str:
    if isinstance(value, Cents):
        return value.text()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(key))}: {_encode(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def dumps(value: object) -> str:
    """JSON text of dicts, lists and scalars, with every `Cents` as a number with two decimals."""
    return _encode(value)
