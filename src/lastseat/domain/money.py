"""Money as integer minor units plus an ISO 4217 currency code; never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lastseat.domain.errors import ValidationError

_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents) of one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValidationError("amount_minor must be an integer number of minor units")
        if not _CURRENCY.fullmatch(self.currency):
            raise ValidationError(f"currency must be three capital letters, got {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def times(self, factor: int) -> Money:
        """This amount multiplied by a whole number (e.g. a quantity)."""
        return Money(self.amount_minor * factor, self.currency)

    def is_positive(self) -> bool:
        """True when strictly above zero."""
        return self.amount_minor > 0

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationError(f"cannot mix {self.currency} and {other.currency}")

    def __str__(self) -> str:
        units, cents = divmod(abs(self.amount_minor), 100)
        sign = "-" if self.amount_minor < 0 else ""
        return f"{sign}{units}.{cents:02d} {self.currency}"
