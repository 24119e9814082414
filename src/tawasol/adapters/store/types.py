"""Column types that keep money exact and time aware on both SQLite and PostgreSQL.

SQLite has neither a decimal nor a time-zone-aware timestamp type, so the domain's two promises
(money is never float, datetimes are aware) would be broken silently by a plain `Numeric` or
`DateTime` column there. These decorators make both databases hand back the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

# Amounts carry at most 6 decimal places (per-minute rates go to 1/10,000 of a cent) and 12
# integer digits: the range of NUMERIC(18, 6), checked here rather than rounded by the database.
AMOUNT_PRECISION = 18
AMOUNT_SCALE = 6
_QUANTUM = Decimal(1).scaleb(-AMOUNT_SCALE)
_LARGEST = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)


def amount_fits(amount: Decimal) -> bool:
    """True when `amount` can be stored exactly (at most 6 decimals, 12 integer digits)."""
    return amount.is_finite() and abs(amount) < _LARGEST and amount == amount.quantize(_QUANTUM)


def canonical_amount(amount: Decimal) -> Decimal:
    """The amount in plain positional form, keeping the scale it was written with.

    `Decimal("0.0780")` stays 0.0780 (an operator's rate deck reads back digit for digit);
    only exponent forms such as `1E+2` become `100`, which both databases store alike.
    """
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return amount.quantize(Decimal(1))
    return amount


class Amount(TypeDecorator[Decimal]):
    """A money amount, read back as the very Decimal written (value and scale).

    PostgreSQL: NUMERIC without a fixed scale, which keeps "0.0780" as 0.0780 where
    NUMERIC(18, 6) would return 0.078000 (equal, but not what the operator typed); the range
    of NUMERIC(18, 6) is enforced by `amount_fits` before writing. SQLite: text, because a
    column declared NUMERIC there has numeric affinity and turns "0.0780" into a REAL, which
    is exactly the float we promised never to use.
    """

    impl = Numeric(asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"amounts must be Decimal, got {type(value).__name__}")
        if not amount_fits(value):
            raise ValueError(f"amount {value} needs more than 6 decimals or 12 integer digits")
        exact = canonical_amount(value)
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC and always read back aware in UTC.

    PostgreSQL's `timestamptz` keeps the instant; SQLite stores text without an offset, so the
    value is converted to UTC before writing and UTC is attached after reading. Naive datetimes
    are refused: their meaning depends on the machine that wrote them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store naive datetime {value.isoformat()}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
