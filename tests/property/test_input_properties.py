"""Order inputs and settings, for any value: accepted exactly when valid, refused with a
message naming the field otherwise, and no order the risk manager accepts is ever over a
limit.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.unit.risk.builders import ctx, open_order, order
from tradingbot.brokers.ibkr.validation import to_decimal
from tradingbot.domain import ContractRef, OrderSide, OrderType
from tradingbot.engine.intents import TargetPosition, TradeIntent, intent_to_request
from tradingbot.errors import ConfigError, InvalidOrderError
from tradingbot.risk.manager import RiskManager
from tradingbot.settings import LIVE_PORTS, PAPER_PORTS, load_settings, mask_account

AAPL = ContractRef("AAPL", con_id=265598)
shares = st.integers(min_value=-5000, max_value=5000).map(Decimal)


# --- order inputs -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(target=shares, position=shares, pending=shares)
def test_a_target_sends_exactly_the_difference_counting_working_orders(
    target: Decimal, position: Decimal, pending: Decimal
) -> None:
    request = intent_to_request(TargetPosition("AAPL", target), AAPL, position, pending, "r-1")
    missing = target - (position + pending)
    if missing == 0:
        assert request is None
        return
    assert request is not None
    signed = request.quantity if request.side is OrderSide.BUY else -request.quantity
    assert signed == missing
    assert request.quantity > 0
    assert request.order_ref == "r-1"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_intents_refuse_floats_whatever_their_value(value: float) -> None:
    with pytest.raises(TypeError, match=r"TradeIntent\.quantity must be a Decimal or int"):
        TradeIntent("AAPL", OrderSide.BUY, value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"TargetPosition\.quantity"):
        TargetPosition("AAPL", value)  # type: ignore[arg-type]


@given(st.integers(max_value=0))
def test_a_trade_of_no_or_negative_shares_is_refused(quantity: int) -> None:
    with pytest.raises(ValueError, match=r"TradeIntent\.quantity must be positive"):
        TradeIntent("AAPL", OrderSide.SELL, Decimal(quantity))


@given(st.decimals(allow_nan=False, allow_infinity=False, max_value=0))
def test_a_limit_price_must_be_positive(price: Decimal) -> None:
    with pytest.raises(ValueError, match=r"limit_price must be positive"):
        TradeIntent("AAPL", OrderSide.BUY, Decimal(1), OrderType.LIMIT, limit_price=price)


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.text(max_size=12),
        st.booleans(),
        st.none(),
    )
)
def test_broker_numbers_are_finite_decimals_or_a_named_error(value: object) -> None:
    try:
        result = to_decimal(value, "quantity")
    except InvalidOrderError as exc:
        error = str(exc)
    else:
        error = ""
    if error:
        assert "quantity" in error
        return
    assert isinstance(result, Decimal)
    assert result.is_finite()
    assert not isinstance(value, bool)
    if isinstance(value, float):
        assert math.isclose(float(result), value)


# --- no accepted order is over a limit ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.integers(min_value=1, max_value=3000),
    side=st.sampled_from([OrderSide.BUY, OrderSide.SELL]),
    price=st.decimals(min_value="1", max_value="1000", places=2),
    position=st.integers(min_value=0, max_value=3000),
    working=st.integers(min_value=0, max_value=1000),
)
def test_an_accepted_order_is_within_every_size_limit(
    quantity: int, side: OrderSide, price: Decimal, position: int, working: int
) -> None:
    s = load_settings(
        _env_file=None,
        risk_allow_outside_rth=True,
        risk_max_order_quantity=500,
        risk_max_order_notional_usd=40_000,
        risk_max_position_quantity=1200,
        risk_max_orders_per_minute=1_000_000,
    )
    risk = RiskManager.from_settings(s)
    pending = [open_order(OrderSide.BUY, working)] if working else []
    decision = risk.check(
        ctx(
            order(side, quantity),
            last_price=str(price),
            positions={"AAPL": position},
            marks={"AAPL": str(price)},
            open_orders=pending,
        )
    )
    exit_only = side is OrderSide.SELL and quantity <= position  # the pending buys may not fill
    if exit_only:  # exits are never refused for their size, so any position can close
        assert decision.accepted, decision
    if not decision.accepted:
        return
    if not exit_only:
        assert quantity <= s.risk_max_order_quantity
        assert quantity * price <= s.risk_max_order_notional_usd
    after = position + working + (quantity if side is OrderSide.BUY else -quantity)
    assert after >= 0  # short selling is off by default
    if side is OrderSide.BUY:
        assert after <= s.risk_max_position_quantity


# --- settings ---------------------------------------------------------------------------


@given(st.integers())
def test_a_port_is_accepted_exactly_when_it_is_a_tcp_port(port: int) -> None:
    if not 1 <= port <= 65535:
        with pytest.raises(ConfigError, match="IBKR_PORT"):
            load_settings(_env_file=None, ibkr_port=port)
        return
    assert load_settings(_env_file=None, ibkr_port=port).ibkr_port == port


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from(["paper", "live"]),
    port=st.sampled_from(sorted(PAPER_PORTS | LIVE_PORTS | {4003, 7000})),
    confirmed=st.booleans(),
    host=st.sampled_from(["127.0.0.1", "localhost", "::1", "10.0.0.5", "gw.invalid"]),
    allow_remote=st.booleans(),
)
def test_safety_check_passes_exactly_when_every_guard_agrees(
    mode: str, port: int, confirmed: bool, host: str, allow_remote: bool
) -> None:
    s = load_settings(
        _env_file=None,
        trading_mode=mode,
        ibkr_port=port,
        live_trading_confirmed=confirmed,
        ibkr_host=host,
        ibkr_allow_remote_host=allow_remote,
    )
    safe = (
        not (mode == "paper" and port in LIVE_PORTS)
        and not (mode == "live" and port in PAPER_PORTS)
        and not (mode == "live" and not confirmed)
        and (host in ("127.0.0.1", "localhost", "::1") or allow_remote)
    )
    try:
        s.check_safety()
    except ConfigError:
        assert not safe
    else:
        assert safe


@given(st.text(alphabet="DUF0123456789", min_size=5, max_size=14))
def test_a_masked_account_keeps_only_its_ends(account: str) -> None:
    masked = mask_account(account)
    assume(len(set(account[2:-2])) > 0)
    assert len(masked) == len(account)
    assert masked[:2] == account[:2]
    assert masked[-2:] == account[-2:]
    assert set(masked[2:-2]) == {"*"}


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=0, max_value=1000))
def test_a_client_id_fallback_range_must_be_ordered(low: int, high: int) -> None:
    text = f"{low}-{high}"
    if low > high:
        with pytest.raises(ConfigError, match="IBKR_CLIENT_ID_FALLBACK_RANGE"):
            load_settings(_env_file=None, ibkr_client_id_fallback_range=text)
        return
    s = load_settings(_env_file=None, ibkr_client_id_fallback_range=text)
    assert s.ibkr_client_id_fallback_range == (low, high)
