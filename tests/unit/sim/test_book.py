"""The account book's arithmetic, checked against hand-computed figures (IB's conventions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradingbot.sim.book import AccountBook, BookPosition

ACCT = "DU1234567"
AAPL = 265598
D = Decimal


def make_book() -> AccountBook:
    return AccountBook([ACCT, "DU7654321"], D("100000"))


def test_opening_a_long_puts_the_commission_into_avg_cost_and_takes_it_from_cash() -> None:
    book = make_book()
    pos = book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    assert pos == BookPosition(AAPL, "AAPL", D(100), D("10.01"), D(0))
    assert book.cash(ACCT) == D("100000") - D("1000") - D("1")
    assert book.cash("DU7654321") == D("100000")


def test_adding_to_a_long_averages_cost_including_both_commissions() -> None:
    book = make_book()
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    pos = book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("12.00"), D("1.00"))
    # (1000 + 1 + 1200 + 1) / 200
    assert pos.avg_cost == D("11.01")
    assert pos.quantity == D(200)
    assert book.cash(ACCT) == D("100000") - D("2202")


def test_reducing_a_long_books_realized_pnl_net_of_both_commissions() -> None:
    book = make_book()
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    pos = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(40), D("12.00"), D("1.00"))
    # 40 * (12 - 10.01) - 1 = 78.60; the rest keeps its cost
    assert pos.realized_pnl == D("78.60")
    assert pos.quantity == D(60)
    assert pos.avg_cost == D("10.01")
    assert book.cash(ACCT) == D("100000") - D("1001") + D("480") - D("1")
    assert book.realized_pnl(ACCT) == D("78.60")


def test_closing_leaves_a_flat_position_with_its_realized_pnl() -> None:
    book = make_book()
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    pos = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(100), D("9.00"), D("1.00"))
    # 100 * (9 - 10.01) - 1 = -102
    assert pos == BookPosition(AAPL, "AAPL", D(0), D(0), D("-102.00"))
    assert book.cash(ACCT) == D("100000") - D("102")
    assert book.positions(ACCT) == [pos]


def test_flipping_long_to_short_splits_the_commission_and_opens_at_the_fill_price() -> None:
    book = make_book()
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    pos = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(150), D("11.00"), D("1.50"))
    # closing 100: 100 * (11 - 10.01) - 1.00 = 98; opening short 50 at 11 less 0.50 commission
    assert pos.realized_pnl == D("98.00")
    assert pos.quantity == D(-50)
    assert pos.avg_cost == D("10.99")
    assert book.cash(ACCT) == D("100000") - D("1001") + D("1650") - D("1.5")


def test_short_round_trip_realizes_the_drop_less_commissions() -> None:
    book = make_book()
    opened = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(100), D("20.00"), D("1.00"))
    assert opened.avg_cost == D("19.99")
    added = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(100), D("22.00"), D("1.00"))
    # net proceeds per share: (1999 + 2199) / 200
    assert added.avg_cost == D("20.99")
    closed = book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(200), D("18.00"), D("2.00"))
    # 200 * (20.99 - 18) - 2 = 596
    assert closed.realized_pnl == D("596.00")
    assert closed.quantity == 0
    assert book.cash(ACCT) == D("100000") + D("596")


def test_listeners_hear_every_change() -> None:
    book = make_book()
    heard: list[tuple[str, BookPosition]] = []
    book.add_listener(lambda account, pos: heard.append((account, pos)))
    first = book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(10), D("5"), D("1"))
    second = book.apply_fill(ACCT, AAPL, "AAPL", "SLD", D(10), D("6"), D("1"))
    assert heard == [(ACCT, first), (ACCT, second)]


def test_a_failing_listener_does_not_stop_the_others() -> None:
    book = make_book()
    heard: list[BookPosition] = []

    def broken(account: str, pos: BookPosition) -> None:
        raise RuntimeError("boom")

    book.add_listener(broken)
    book.add_listener(lambda account, pos: heard.append(pos))
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(10), D("5"), D("1"))
    assert len(heard) == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("side", {"side": "BUY"}),
        ("shares", {"shares": D(0)}),
        ("price", {"price": D("-1")}),
        ("commission", {"commission": D("-0.01")}),
    ],
)
def test_bad_fills_name_the_field_and_change_nothing(field: str, kwargs: dict[str, object]) -> None:
    book = make_book()
    args: dict[str, object] = {
        "account": ACCT,
        "con_id": AAPL,
        "symbol": "AAPL",
        "side": "BOT",
        "shares": D(1),
        "price": D(1),
        "commission": D(1),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        book.apply_fill(**args)  # type: ignore[arg-type]
    assert book.cash(ACCT) == D("100000")
    assert book.positions(ACCT) == []


def test_unknown_account_is_a_key_error_naming_the_account() -> None:
    with pytest.raises(KeyError, match="DU0000000"):
        make_book().cash("DU0000000")


def test_summary_values_mark_positions_to_market() -> None:
    book = make_book()
    book.apply_fill(ACCT, AAPL, "AAPL", "BOT", D(100), D("10.00"), D("1.00"))
    book.apply_fill(ACCT, 756733, "SPY", "SLD", D(10), D("50.00"), D("1.00"))
    marks = {AAPL: D("11.00"), 756733: D("48.00")}
    values = book.summary_values(ACCT, marks.__getitem__)
    cash = D("100000") - D("1001") + D("499")
    assert values["TotalCashValue"] == cash
    assert values["GrossPositionValue"] == D("1100") + D("480")
    assert values["NetLiquidation"] == cash + D("1100") - D("480")
    # 100 * (11 - 10.01) + (-10) * (48 - 49.9)
    assert values["UnrealizedPnL"] == D("99") + D("19")
    assert values["RealizedPnL"] == D(0)
    init_margin = D("1580") * D("0.25")
    assert values["AvailableFunds"] == values["NetLiquidation"] - init_margin
    assert values["BuyingPower"] == values["AvailableFunds"] * 4
