"""The API's request and response bodies: what the OpenAPI spec publishes.

Money and quantities are decimal strings (exact, as stored); times are ISO 8601 UTC.
Account numbers are always masked. Request bodies reject unknown fields, so a typo in a
control call is an error rather than a silently ignored option.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tradingbot.api.context import CancelOutcome, DayPnL, FlattenOutcome, Source
from tradingbot.domain import Fill, OrderUpdate, PnL, Position
from tradingbot.risk.checks.daily_loss import DailyLossKillSwitch
from tradingbot.settings import mask_account


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer: what went wrong and what to do; ``errors`` lists bad fields."""

    detail: str
    errors: list[FieldProblem] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "bad input (the message says what to send)",
        401: "missing or wrong API token",
        404: "unknown symbol or thing",
        409: "the order could not be placed",
        422: "malformed request: wrong type, missing or unknown field",
        502: "IB or the database failed",
        503: "a part of the bot is not running or IB is not connected",
        504: "IB did not answer in time",
    }.items()
}


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    connection: str
    version: str
    uptime_s: float


class Notice(BaseModel):
    code: int
    message: str
    time: datetime


class ConnectionOut(BaseModel):
    state: str
    since: datetime
    ready: bool
    host: str
    port: int
    client_id: int
    accounts: list[str]
    reconnects: int
    disconnects: int
    stalls_detected: int
    last_notice: Notice | None
    notices: list[Notice]


class PositionOut(BaseModel):
    account: str
    symbol: str
    con_id: int
    quantity: Decimal
    avg_cost: Decimal
    market_price: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal | None

    @classmethod
    def of(cls, p: Position) -> PositionOut:
        return cls(
            account=mask_account(p.account),
            symbol=p.symbol,
            con_id=p.con_id,
            quantity=p.quantity,
            avg_cost=p.avg_cost,
            market_price=p.market_price,
            market_value=p.market_value,
            unrealized_pnl=p.unrealized_pnl,
            realized_pnl=p.realized_pnl,
        )


class Positions(BaseModel):
    source: Source
    positions: list[PositionOut]


class OrderOut(BaseModel):
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    limit_price: Decimal | None
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    account: str
    time: datetime

    @classmethod
    def of(cls, o: OrderUpdate) -> OrderOut:
        return cls(
            order_id=o.order_id,
            perm_id=o.perm_id,
            client_id=o.client_id,
            order_ref=o.order_ref,
            symbol=o.symbol,
            side=o.side.value,
            order_type=o.order_type.value,
            quantity=o.quantity,
            limit_price=o.limit_price,
            status=o.status.value,
            filled=o.filled,
            remaining=o.remaining,
            avg_fill_price=o.avg_fill_price,
            account=mask_account(o.account),
            time=o.time,
        )


class Orders(BaseModel):
    source: Source
    orders: list[OrderOut]


class FillOut(BaseModel):
    exec_id: str
    order_id: int
    order_ref: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    time: datetime
    commission: Decimal | None
    account: str

    @classmethod
    def of(cls, f: Fill) -> FillOut:
        return cls(
            exec_id=f.exec_id,
            order_id=f.order_id,
            order_ref=f.order_ref,
            symbol=f.symbol,
            side=f.side.value,
            quantity=f.quantity,
            price=f.price,
            time=f.time,
            commission=f.commission,
            account=mask_account(f.account),
        )


class Fills(BaseModel):
    source: Source
    fills: list[FillOut]


class PnLPointOut(BaseModel):
    time: datetime
    daily: Decimal | None
    unrealized: Decimal | None
    realized: Decimal | None


class PnLToday(BaseModel):
    source: Source
    daily: Decimal | None
    unrealized: Decimal | None
    realized: Decimal | None
    curve: list[PnLPointOut]

    @classmethod
    def of(cls, pnl: PnL | None, source: Source, curve: list[PnLPointOut]) -> PnLToday:
        return cls(
            source=source,
            daily=pnl.daily if pnl else None,
            unrealized=pnl.unrealized if pnl else None,
            realized=pnl.realized if pnl else None,
            curve=curve,
        )


class DayPnLOut(BaseModel):
    day: str
    realized: Decimal
    commission: Decimal
    fills: int
    ib_daily: Decimal | None

    @classmethod
    def of(cls, d: DayPnL) -> DayPnLOut:
        return cls(
            day=d.day,
            realized=d.realized,
            commission=d.commission,
            fills=d.fills,
            ib_daily=d.ib_daily,
        )


class PnLByDay(BaseModel):
    days: list[DayPnLOut]


class KillSwitchOut(BaseModel):
    """``rule`` is what tripped it (``max_daily_loss`` or ``operator``); ``daily_pnl`` the
    day's P&L at the trip. The state is stored, so it reads the same after a restart."""

    tripped: bool
    reason: str | None
    time: datetime | None
    max_daily_loss_usd: Decimal
    rule: str | None = None
    daily_pnl: Decimal | None = None

    @classmethod
    def of(cls, switch: DailyLossKillSwitch) -> KillSwitchOut:
        trip = switch.trip
        return cls(
            tripped=trip is not None,
            reason=trip.reason if trip else None,
            time=trip.time if trip else None,
            max_daily_loss_usd=switch.max_daily_loss_usd,
            rule=trip.rule if trip else None,
            daily_pnl=trip.daily_pnl if trip else None,
        )


class RejectionOut(BaseModel):
    time: datetime
    rule: str
    message: str
    limit: str
    value: str


class RiskOut(BaseModel):
    entries_stopped: bool | None
    kill_switch: KillSwitchOut
    limits: dict[str, str]
    rules: list[str]
    recent_rejections: list[RejectionOut]


class EntriesOut(BaseModel):
    entries_stopped: bool
    kill_switch_tripped: bool
    message: str


class CancelOut(BaseModel):
    order_id: int
    symbol: str
    result: str
    message: str

    @classmethod
    def of(cls, c: CancelOutcome) -> CancelOut:
        return cls(order_id=c.order_id, symbol=c.symbol, result=c.result, message=c.message)


class CancelAllOut(BaseModel):
    orders: list[CancelOut]


class FlattenIn(BaseModel):
    """``symbol`` to close one position, or ``all: true``; ``confirm`` must repeat the target
    (the symbol, or ``ALL``) so a stray click or a replayed request cannot close a book."""

    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(None, min_length=1, max_length=16, examples=["AAPL"])
    all: bool = False
    confirm: str = Field(..., min_length=1, max_length=16, examples=["AAPL", "ALL"])

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if not value.replace(".", "").replace(" ", "").isalnum():
            raise ValueError("must be a ticker symbol such as AAPL or BRK B")
        return value


class FlattenOut(BaseModel):
    symbol: str
    quantity_before: Decimal
    result: str
    message: str

    @classmethod
    def of(cls, f: FlattenOutcome) -> FlattenOut:
        return cls(
            symbol=f.symbol, quantity_before=f.quantity_before, result=f.result, message=f.message
        )


class FlattenAllOut(BaseModel):
    results: list[FlattenOut]


class KillSwitchResetIn(BaseModel):
    """``confirm: true`` is required: a reset lets entries through again, and is stored."""

    model_config = ConfigDict(extra="forbid")

    confirm: bool = False


class KillSwitchTripIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("operator stop", min_length=1, max_length=200)


class Overview(BaseModel):
    """Everything the dashboard shows, in one request per refresh."""

    health: Health
    connection: ConnectionOut
    positions: Positions | None
    orders: Orders | None
    fills: Fills
    pnl: PnLToday
    risk: RiskOut | None
    errors: dict[str, str]
