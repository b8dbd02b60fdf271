"""Backtest pieces on plain values: drawdown, bar sizes, the replayed quotes, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradingbot.engine.backtest import (
    BacktestResult,
    EquityPoint,
    ReplayClock,
    ReplayWalk,
    _points,
    ib_bar_size,
    max_drawdown,
)
from tradingbot.engine.report import equity_svg, text_lines, write_report
from tradingbot.errors import ConfigError
from tradingbot.sim.bars import Bar as SimBar
from tradingbot.sim.universe import UNIVERSE

D = Decimal
T0 = datetime(2024, 1, 2, tzinfo=UTC)


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    assert max_drawdown([D(100), D(120), D(90), D(130), D(110)]) == (D(30), D(25))
    assert max_drawdown([D(100), D(101), D(102)]) == (D(0), D(0))
    assert max_drawdown([]) == (D(0), D(0))


def test_bar_sizes_map_to_ib_words() -> None:
    assert (ib_bar_size(60), ib_bar_size(300), ib_bar_size(86400)) == ("1 min", "5 mins", "1 day")
    with pytest.raises(ConfigError, match="match no IB bar size"):
        ib_bar_size(7)


def test_a_bar_is_replayed_open_near_extreme_far_extreme_close() -> None:
    up = SimBar(T0, D(10), D(12), D(9), D(11), D(1), D(10), 1)
    down = SimBar(T0, D(10), D(12), D(9), D("9.5"), D(1), D(10), 1)
    assert _points(up) == (D(10), D(9), D(12), D(11))
    assert _points(down) == (D(10), D(12), D(9), D("9.5"))


def test_the_replay_walk_moves_only_when_told_and_quotes_one_tick_wide() -> None:
    walk = ReplayWalk(UNIVERSE["AAPL"], seed=7, start_price=D(100))
    before = (walk.last, walk.volume)
    walk.step()
    assert (walk.last, walk.volume) == before
    walk.pending = 10_123
    walk.step()
    quote = walk.quote(T0)
    assert (quote.bid, quote.last, quote.ask) == (D("101.22"), D("101.23"), D("101.24"))
    assert quote.volume == before[1] + 100
    assert walk.pending is None


def test_the_replay_clock_stands_still_until_moved() -> None:
    clock = ReplayClock(T0)
    assert clock.now() == clock.start == T0
    clock.time = T0 + timedelta(hours=1)
    assert clock.now() == T0 + timedelta(hours=1)


def result(tmp_path: Path) -> BacktestResult:
    equity = [D(1000), D(1010), D(995), D(1005)]
    return BacktestResult(
        strategy="sma_cross",
        params={"fast": "2", "slow": "4"},
        symbols=("AAPL",),
        start=T0,
        end=T0 + timedelta(days=4),
        bars=4,
        starting_equity=D(1000),
        trades=[
            {
                "time": T0 + timedelta(days=1),
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": D(10),
                "price": D("100.01"),
                "commission": D(1),
                "realized_pnl": D(0),
                "order_ref": "tb-1",
                "exec_id": "e1",
            },
        ],
        equity=[EquityPoint(T0 + timedelta(days=i), e) for i, e in enumerate(equity)],
        realized_pnl=D(0),
        unrealized_pnl=D(5),
        commissions=D(1),
        positions={"AAPL": D(10)},
        risk_rejections=["2024-01-03 AAPL BUY 10: rejected by max_position: over"],
        elapsed_s=0.5,
        files={"bars": tmp_path / "bars.csv"},
    )


def test_the_report_states_pnl_drawdown_and_speed(tmp_path: Path) -> None:
    lines = text_lines(result(tmp_path))
    assert "P&L: +5.00 (realized +0.00, unrealized +5.00; commissions -1.00)" in lines
    assert "max drawdown: -15.00 (1.49% of the peak)" in lines
    assert any("4 bars in 0.50 s (replay 8 bars/s)" in line for line in lines)
    assert "open positions at the end: AAPL 10" in lines


def test_the_report_files(tmp_path: Path) -> None:
    files = write_report(result(tmp_path), tmp_path)
    summary = json.loads(files["summary"].read_text())
    assert (summary["total_pnl"], summary["max_drawdown"], summary["fills"]) == ("5", "15", 1)
    assert (
        files["trades"]
        .read_text()
        .splitlines()[1]
        .startswith("2024-01-03T00:00:00+00:00,AAPL,BUY,10,100.01,1,0,tb-1,e1")
    )
    assert files["equity_csv"].read_text().splitlines()[-1] == "2024-01-05T00:00:00+00:00,1005"
    page = files["html"].read_text()
    assert "<polyline" in page
    assert "rejected by max_position" in page


def test_the_svg_draws_one_point_per_equity_value(tmp_path: Path) -> None:
    svg = equity_svg(result(tmp_path))
    points = svg.split('<polyline points="')[1].split('"')[0].split()
    assert len(points) == 4
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
