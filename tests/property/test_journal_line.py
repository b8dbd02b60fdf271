"""The journal's hand-built log line is byte for byte what ``json.dumps`` makes of the
entry, for any intent: the replay after a crash reads it with ``json.loads``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.domain import ContractRef, OrderRequest, OrderSide, OrderType, TimeInForce
from tradingbot.sync.journal import _entry, _log_line

prices = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=4)
requests = st.builds(
    OrderRequest,
    contract=st.builds(ContractRef, symbol=st.text(), con_id=st.integers(0, 2**31)),
    side=st.sampled_from(OrderSide),
    quantity=st.decimals(allow_nan=False, allow_infinity=False),
    order_type=st.sampled_from(OrderType),
    limit_price=prices,
    stop_price=prices,
    tif=st.sampled_from(TimeInForce),
    outside_rth=st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(
    request=requests, order_ref=st.text(), risk=st.text(), at=st.datetimes(timezones=st.just(UTC))
)
def test_the_log_line_is_the_entry_as_json(
    request: OrderRequest, order_ref: str, risk: str, at: datetime
) -> None:
    stamp = at.isoformat()
    line = _log_line(order_ref, request, risk, stamp)
    entry = _entry(order_ref, request, True, risk, stamp)
    assert line == (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    assert json.loads(line) == entry


def test_a_symbol_with_quotes_and_a_newline_stays_one_line() -> None:
    request = OrderRequest(ContractRef('A"B\\C\n', con_id=1), OrderSide.BUY, Decimal("1.5"))
    line = _log_line("tb-1", request, "accepted", "2026-01-02T15:00:00+00:00")
    assert line.count(b"\n") == 1
    assert json.loads(line)["intent"]["symbol"] == 'A"B\\C\n'
