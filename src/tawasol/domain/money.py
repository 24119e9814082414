"""Money: an amount in a currency, never a float.

Prices of plans and carriers' per-minute rates are `Decimal` amounts with an ISO 4217 currency.
Adding two amounts in different currencies is a programming error, not a conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from tawasol.domain.codes import check_currency
from tawasol.domain.errors import InvalidInput


@dataclass(frozen=True)
class Money:
    """An amount of money in one currency (e.g. 9.99 EUR).

    Amounts compare only within one currency: 1 EUR < 2 MAD is a programming error, not True.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise InvalidInput(
                "money amounts must be Decimal, never float", amount=str(self.amount)
            )
        if not self.amount.is_finite():
            raise InvalidInput("money amount must be finite", amount=str(self.amount))
        check_currency(self.currency)

    @classmethod
    def parse(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build from text (`"9.99"`), an int or a Decimal; floats are refused."""
        if isinstance(amount, float):  # pragma: no cover - defensive, typed away
            raise InvalidInput("money amounts must not be float", amount=repr(amount))
        try:
            value = Decimal(str(amount).strip())
        except InvalidOperation as error:
            raise InvalidInput("not a money amount", amount=str(amount)) from error
        return cls(value, currency.strip().upper())

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise InvalidInput("money factors must not be float", factor=repr(factor))
        return Money(self.amount * Decimal(factor), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput(
                "cannot combine amounts in different currencies",
                left=self.currency,
                right=other.currency,
            )

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
