"""The backtest report: text for the terminal, CSVs for tools, one HTML page for people.

The equity curve is drawn as inline SVG by hand: a line and a filled drawdown band need no
plotting library, and the page opens anywhere, offline, with nothing to install. The same
SVG is also saved on its own (``equity.svg``) for embedding elsewhere.
"""

from __future__ import annotations

import csv
import html
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradingbot.engine.backtest import BacktestResult

_W, _H, _PAD = 900, 320, 48


def text_lines(result: BacktestResult) -> list[str]:
    dd, dd_pct = result.max_drawdown
    params = ", ".join(f"{k}={v}" for k, v in sorted(result.params.items()))
    return [
        f"backtest {result.strategy} ({params}) on {', '.join(result.symbols)}",
        f"period {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC, "
        f"{result.bars} bars in {result.elapsed_s:.2f} s (replay {result.bars_per_s:,.0f} bars/s)",
        f"fills: {len(result.trades)}; risk rejections: {len(result.risk_rejections)}",
        f"P&L: {_money(result.total_pnl)} (realized {_money(result.realized_pnl)}, unrealized "
        f"{_money(result.unrealized_pnl)}; commissions {_money(-result.commissions)})",
        f"max drawdown: {_money(-dd)} ({dd_pct:.2f}% of the peak)",
        "open positions at the end: "
        + (", ".join(f"{s} {_num(q)}" for s, q in result.positions.items() if q) or "none"),
    ]


def write_report(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """Write trades.csv, equity.csv, equity.svg, summary.json and report.html to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = dict(result.files)
    files["trades"] = out_dir / "trades.csv"
    with files["trades"].open("w", newline="", encoding="utf-8") as fh:
        columns = ["time", "symbol", "side", "quantity", "price", "commission", "realized_pnl",
                   "order_ref", "exec_id"]  # fmt: skip
        writer = csv.writer(fh)
        writer.writerow(columns)
        for t in result.trades:
            writer.writerow([_cell(t[c]) for c in columns])
    files["equity_csv"] = out_dir / "equity.csv"
    with files["equity_csv"].open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["time", "equity"])
        for p in result.equity:
            writer.writerow([p.time.isoformat(), p.equity])
    svg = equity_svg(result)
    files["equity_svg"] = out_dir / "equity.svg"
    files["equity_svg"].write_text(svg, encoding="utf-8")
    dd, dd_pct = result.max_drawdown
    summary = {
        "strategy": result.strategy,
        "params": {k: str(v) for k, v in result.params.items()},
        "symbols": list(result.symbols),
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
        "bars": result.bars,
        "fills": len(result.trades),
        "realized_pnl": str(result.realized_pnl),
        "unrealized_pnl": str(result.unrealized_pnl),
        "total_pnl": str(result.total_pnl),
        "commissions": str(result.commissions),
        "max_drawdown": str(dd),
        "max_drawdown_pct": str(round(dd_pct, 4)),
        "risk_rejections": len(result.risk_rejections),
        "elapsed_s": round(result.elapsed_s, 3),
        "replay_s": round(result.replay_s, 3),
        "bars_per_s": round(result.bars_per_s, 1),
    }
    files["summary"] = out_dir / "summary.json"
    files["summary"].write_text(json.dumps(summary, indent=2), encoding="utf-8")
    files["html"] = out_dir / "report.html"
    files["html"].write_text(_page(result, svg), encoding="utf-8")
    result.files = files
    return files


def equity_svg(result: BacktestResult) -> str:
    """The equity curve over time with the drawdown from the running peak shaded."""
    points = result.equity
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}"></svg>'
    values = [float(p.equity) for p in points]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    n = len(values)

    def x(i: int) -> float:
        return _PAD + (_W - 2 * _PAD) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * (v - low) / (high - low)

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    peaks, peak = [], values[0]
    for v in values:
        peak = max(peak, v)
        peaks.append(peak)
    band = " ".join(f"{x(i):.1f},{y(p):.1f}" for i, p in enumerate(peaks))
    band += " " + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(values))))
    labels = [
        f'<text x="{_PAD - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>'
        for v in (low, (low + high) / 2, high)
    ]
    first, last = points[0].time, points[-1].time
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="11">'
        f'<rect width="{_W}" height="{_H}" fill="white"/>'
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#999"/>'
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#999"/>'
        f'<polygon points="{band}" fill="#e4572e" fill-opacity="0.25" stroke="none"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>'
        + "".join(labels)
        + f'<text x="{_PAD}" y="{_H - _PAD + 16}">{_when(first)}</text>'
        f'<text x="{_W - _PAD}" y="{_H - _PAD + 16}" text-anchor="end">{_when(last)}</text>'
        f'<text x="{_W / 2}" y="{_PAD / 2}" text-anchor="middle" font-size="13">'
        "equity (USD); shaded: drawdown from the running peak</text></svg>"
    )


def _page(result: BacktestResult, svg: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(t[c]))}</td>" for c in
                         ("time", "symbol", "side", "quantity", "price", "commission",
                          "realized_pnl")) + "</tr>"
        for t in result.trades
    )  # fmt: skip
    facts = "".join(f"<li>{html.escape(line)}</li>" for line in text_lines(result))
    rejections = "".join(f"<li>{html.escape(r)}</li>" for r in result.risk_rejections[:200])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tradingbot backtest</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse}}
td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
td:nth-child(2),td:nth-child(3){{text-align:left}}</style></head><body>
<h1>Backtest: {html.escape(result.strategy)}</h1><ul>{facts}</ul>{svg}
<h2>Fills ({len(result.trades)})</h2><table><tr><th>time</th><th>symbol</th><th>side</th>
<th>quantity</th><th>price</th><th>commission</th><th>realized P&amp;L</th></tr>{rows}</table>
<h2>Risk rejections ({len(result.risk_rejections)})</h2><ul>{rejections or "<li>none</li>"}</ul>
</body></html>
"""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return _num(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M" if moment.hour or moment.minute else "%Y-%m-%d")


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _money(value: Decimal) -> str:
    return f"{value:+,.2f}"
