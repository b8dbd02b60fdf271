"""``describe``: what a log line or an API answer says of an exception."""

from tradingbot.errors import OrderError, describe


def test_an_exception_is_described_by_its_message_or_else_its_type() -> None:
    assert describe(OrderError("order 3 is not open")) == "order 3 is not open"
    assert describe(TimeoutError()) == "TimeoutError"
