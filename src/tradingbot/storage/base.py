"""Declarative base and the two column types that keep money exact and times in UTC.

SQLite has no decimal type: SQLAlchemy's ``Numeric`` would round-trip through a float and
lose cents on large values, so on SQLite :class:`ExactDecimal` stores canonical text, and on
PostgreSQL it is a real ``NUMERIC``. Every value is quantized to the column scale before it
is written, so what the code computed and what it reads back are the same number on both
backends — which is what makes a rerun of a sync converge to identical rows.

SQLite also drops time zones; :class:`UTCDateTime` refuses naive datetimes on the way in
and hands back UTC-aware ones on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import DateTime, MetaData, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

SCALE = 10
_QUANTUM = Decimal(1).scaleb(-SCALE)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def quantize(value: Decimal) -> Decimal:
    """The exact value a column will hold: ``SCALE`` decimals, banker's rounding."""
    return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimal with ``SCALE`` places: ``NUMERIC(28, 10)`` on PostgreSQL, text on SQLite."""

    impl = Numeric(28, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(28, SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money and quantities must be Decimal, got {type(value).__name__}")
        exact = quantize(value)
        return format(exact, "f") if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return quantize(Decimal(value))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend; naive input is a bug and is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must be UTC-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """All tables; the naming convention gives migrations stable constraint names."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {Decimal: ExactDecimal(), datetime: UTCDateTime()}  # noqa: RUF012
