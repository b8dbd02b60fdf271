"""``backtest`` on a known bar file: every trade checked by hand against the CSV.

tests/fixtures/aapl_daily_sma.csv holds 14 daily AAPL bars. With sma_cross fast=2, slow=4
the first four bars are warm-up history (closes 100, 99, 98, 97: fast 97.5 < slow 98.5).
By hand:

- 01-09 closes 102: SMA2 100.5 crosses above SMA4 99.0 -> buy 10 at the 01-10 open, 102.50,
  paying the ask one tick up: 102.51, commission $1.00 (IB fixed: $0.005/share, $1 minimum).
- 01-12 closes 99.5: SMA2 100.5 crosses below SMA4 101.625 -> sell 10 at the 01-16 open, 99.00,
  at the bid one tick down: 98.99, $1.00. Realized: (98.99 - 102.51) x 10 - 2.00 = -37.20.
- 01-18 closes 102.5: SMA2 101.5 crosses above SMA4 100.125 -> buy 10 at the 01-19 open,
  103.00 -> 103.01, $1.00.
- The run ends after the 01-22 bar (close 102.00) holding 10 at an average cost of 103.11
  (103.01 + 0.10 commission per share): unrealized (102.00 - 103.11) x 10 = -11.10.

Total -48.30. Equity peaks at +8.90 on 01-10 (10 x 103.5 - 1025.10 - 1.00) and bottoms at
-48.30 on the last bar: max drawdown 57.20.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradingbot.cli import app
from tradingbot.engine.backtest import BacktestSpec, load_replay, run_backtest
from tradingbot.errors import ConfigError
from tradingbot.settings import load_settings

BARS = Path(__file__).resolve().parents[2] / "fixtures" / "aapl_daily_sma.csv"
D = Decimal


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_backtest_of_the_known_file_gives_the_hand_checked_trades(tmp_path: Path) -> None:
    spec = BacktestSpec(params={"fast": "2", "slow": "4"}, bars=BARS, out_dir=tmp_path)
    result = await run_backtest(load_settings(_env_file=None), spec)

    trades = [(t["time"], t["side"], t["quantity"], t["price"], t["commission"],
               t["realized_pnl"]) for t in result.trades]  # fmt: skip
    assert trades == [
        (day("2024-01-10"), "BUY", D(10), D("102.51"), D("1.00"), D(0)),
        (day("2024-01-16"), "SELL", D(10), D("98.99"), D("1.00"), D("-37.20")),
        (day("2024-01-19"), "BUY", D(10), D("103.01"), D("1.00"), D(0)),
    ]
    assert result.realized_pnl == D("-37.20")
    assert result.unrealized_pnl == D("-11.10")
    assert result.total_pnl == D("-48.30")
    assert result.commissions == D("3.00")
    assert result.positions == {"AAPL": D(10)}
    assert (result.start, result.end) == (day("2024-01-08"), day("2024-01-23"))
    assert result.bars == 10
    assert result.risk_rejections == []
    pnl = [p.equity - result.starting_equity for p in result.equity]
    assert pnl[2] == D("8.90")  # 01-10: 10 x 103.5 - 1025.10 - 1.00
    assert pnl[-1] == D("-48.30")
    assert result.max_drawdown[0] == D("57.20")


async def test_risk_limits_apply_in_a_backtest(tmp_path: Path) -> None:
    spec = BacktestSpec(params={"fast": "2", "slow": "4"}, bars=BARS, out_dir=tmp_path)
    settings = load_settings(_env_file=None, risk_max_order_quantity=D(5))
    result = await run_backtest(settings, spec)
    assert result.trades == []
    assert len(result.risk_rejections) == 2  # both buys; nothing held, so no sell signal sent
    assert all("max_order_quantity" in r for r in result.risk_rejections)


def test_the_report_files_are_written(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["backtest", "--bars", str(BARS), "--params", "fast=2,slow=4", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert "P&L: -48.30 (realized -37.20, unrealized -11.10; commissions -3.00)" in result.output
    assert "max drawdown: -57.20" in result.output
    for name in ("report.html", "equity.svg", "equity.csv", "trades.csv", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html
    assert "102.51" in html
    assert len((tmp_path / "trades.csv").read_text().splitlines()) == 4


async def test_generated_bars_replay_and_write_their_file(tmp_path: Path) -> None:
    spec = BacktestSpec(
        params={"fast": "3", "slow": "8"}, symbols=("MSFT",), start=day("2024-03-01"),
        end=day("2024-03-02"), bar_size="5 mins", out_dir=tmp_path,
    )  # fmt: skip
    result = await run_backtest(load_settings(_env_file=None), spec)
    assert result.bars == 78  # one NYSE session of 5-minute bars (09:30-16:00)
    assert (tmp_path / "bars.csv").exists()
    assert result.trades  # a random walk crosses its averages within a day of 5-min bars
    again = await run_backtest(load_settings(_env_file=None), spec)
    assert [t["price"] for t in again.trades] == [t["price"] for t in result.trades]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bars", "missing.csv"], "--bars missing.csv: no such file"),
        (["--bars", str(BARS), "--symbols", "MSFT"], "has no bars for MSFT"),
        (["--bars", str(BARS), "--from", "2024-02-01", "--to", "2024-01-01"], "must be before"),
        (["--bars", str(BARS), "--from", "yesterday"], "is not a date"),
        (["--from", "2024-01-01"], "give --bars FILE, or both --from and --to"),
        (["--bars", str(BARS), "--params", "fast=9,slow=3"], "must be smaller than slow"),
        (["--from", "2024-01-01", "--to", "2024-01-05", "--symbols", "ZZZZ"], "unknown symbol"),
    ],
)
def test_bad_backtest_input_is_named(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["backtest", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_bar_file_with_a_bad_row_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,date,open,high,low,close,volume\nAAPL,2024-01-02,1,0.5,2,1,10\n")
    with pytest.raises(ConfigError, match=r"bad.csv:2: need 0 < low"):
        load_replay(BacktestSpec(bars=bad), warmup_bars=0)
