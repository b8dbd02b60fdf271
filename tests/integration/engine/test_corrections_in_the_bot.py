"""An IB execution correction reaching the running bot over TCP: the runner's tracker moves
by the difference from what was corrected, so a flatten afterwards trades the right side."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.integration.engine.test_risk_through_the_stack import bot_on, send
from tests.polling import until
from tradingbot.engine.app import Bot
from tradingbot.engine.intents import TargetPosition
from tradingbot.engine.runner import Runner
from tradingbot.sim import SimulatedGateway

D = Decimal


def held(gw: SimulatedGateway, symbol: str) -> Decimal:
    return sum(
        (p.quantity for a in gw.book.accounts for p in gw.book.positions(a) if p.symbol == symbol),
        D(0),
    )


async def bought_and_sold_100(bot: Bot, gw: SimulatedGateway) -> Runner:
    """Buy 100 AAPL, sell them, and wait for the runner to see both; returns the runner."""
    runner = bot.runner
    assert runner is not None
    for target, what in ((100, "the buy of 100 to fill"), (0, "the sell of 100 to fill")):
        assert (await send(bot, TargetPosition("AAPL", D(target)))).accepted
        await until(lambda t=target: held(gw, "AAPL") == t and not runner.tracker.open_orders()
                    and runner.tracker.position("AAPL") == t, what=what)  # fmt: skip
    return runner


async def test_flatten_after_a_quantity_correction_sells_what_is_left(tmp_path: Path) -> None:
    async with bot_on(tmp_path) as (bot, gw):
        runner = await bought_and_sold_100(bot, gw)
        gw.correct_execution(shares=D(60))  # IB: the sell was really 60 shares
        await until(
            lambda: runner.tracker.position("AAPL") == 40 and not runner.tracker.restating(),
            what="the tracker to move by the correction's difference",
        )
        assert (await send(bot, TargetPosition("AAPL", D(0)))).accepted
        await until(lambda: held(gw, "AAPL") == 0 and not runner.tracker.open_orders(),
                    what="the flatten to sell the 40 left")  # fmt: skip
        assert runner.tracker.position("AAPL") == 0
        sells = [e for e in gw.orders.engine.executions if e.symbol == "AAPL" and e.side == "SLD"]
        assert [e.shares for e in sells][-1] == 40


async def test_a_correction_whose_position_update_comes_first_is_counted_once(
    tmp_path: Path,
) -> None:
    """IB's position (40 left) ahead of the correction, its execution late: the position
    report counts the correction already, so the execution must not move the tracker again
    (it would hold 80, and a flatten would sell 80 of 40 shares)."""
    async with bot_on(tmp_path) as (bot, gw):
        runner = await bought_and_sold_100(bot, gw)
        gw.faults.executions_late_s = 0.5
        correction = gw.correct_execution(shares=D(60), position_first=True)
        gw.faults.executions_late_s = None
        await until(lambda: runner.tracker.position("AAPL") == 40 and not runner.tracker.restating()
                    and runner.tracker.has_seen(correction),
                    what="the tracker restated at 40 after the correction")  # fmt: skip
        assert (await send(bot, TargetPosition("AAPL", D(0)))).accepted
        await until(lambda: held(gw, "AAPL") == 0 and not runner.tracker.open_orders(),
                    what="the flatten to sell the 40 left")  # fmt: skip
        sells = [e for e in gw.orders.engine.executions if e.symbol == "AAPL" and e.side == "SLD"]
        assert [e.shares for e in sells][-1] == 40
        assert runner.tracker.position("AAPL") == 0
