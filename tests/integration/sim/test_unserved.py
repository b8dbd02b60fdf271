"""A request the simulator does not serve is answered at once with IB's error on its own id.

Driven through the unmodified ib_async client over TCP. The walk sends every message of the
TWS API (each through ib_async's own encoder, so the id sits where ib_async puts it) to a
gateway that does not serve it, and wants IB's error on that request's id (−1 for the
messages that carry none) within a second. The awaited calls of ib_async's async API end
within a second instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import pytest
from ib_async import (
    IB,
    Client,
    ExecutionFilter,
    MarketOrder,
    Option,
    ScannerSubscription,
    Stock,
    WshEventData,
)

from tests.integration.sim.conftest import Expect
from tradingbot.sim import SimulatedGateway
from tradingbot.sim.unserved import NO_ID, UNSERVED

WITHIN_S = 1.0
CON_ID = 265598
AAPL = Stock("AAPL", "SMART", "USD", conId=CON_ID)
AAPL_CALL = Option("AAPL", "20300118", 200, "C", "SMART", currency="USD")
SCAN = ScannerSubscription(instrument="STK", locationCode="STK.US.MAJOR", scanCode="MOST_ACTIVE")
ACCOUNT = "DU1234567"
TICKS_END = "20250102 16:00:00 UTC"

Call = Callable[[Client, int], object]

CALLS: dict[int, Call] = {
    1: lambda c, r: c.reqMktData(r, AAPL, "", False, False, []),
    2: lambda c, r: c.cancelMktData(r),
    3: lambda c, r: c.placeOrder(r, AAPL, MarketOrder("BUY", 1)),
    4: lambda c, r: c.cancelOrder(r),
    5: lambda c, r: c.reqOpenOrders(),
    6: lambda c, r: c.reqAccountUpdates(True, ACCOUNT),
    7: lambda c, r: c.reqExecutions(r, ExecutionFilter()),
    8: lambda c, r: c.reqIds(1),
    9: lambda c, r: c.reqContractDetails(r, AAPL),
    10: lambda c, r: c.reqMktDepth(r, AAPL, 5, False, []),
    11: lambda c, r: c.cancelMktDepth(r, False),
    12: lambda c, r: c.reqNewsBulletins(True),
    13: lambda c, r: c.cancelNewsBulletins(),
    14: lambda c, r: c.setServerLogLevel(3),
    15: lambda c, r: c.reqAutoOpenOrders(True),
    16: lambda c, r: c.reqAllOpenOrders(),
    17: lambda c, r: c.reqManagedAccts(),
    18: lambda c, r: c.requestFA(1),
    19: lambda c, r: c.replaceFA(r, 1, "<ListOfGroups/>"),
    20: lambda c, r: c.reqHistoricalData(r, AAPL, "", "1 D", "1 hour", "TRADES", 1, 1, False, []),
    21: lambda c, r: c.exerciseOptions(r, AAPL_CALL, 1, 1, ACCOUNT, 0),
    22: lambda c, r: c.reqScannerSubscription(r, SCAN, [], []),
    23: lambda c, r: c.cancelScannerSubscription(r),
    24: lambda c, r: c.reqScannerParameters(),
    25: lambda c, r: c.cancelHistoricalData(r),
    49: lambda c, r: c.reqCurrentTime(),
    50: lambda c, r: c.reqRealTimeBars(r, AAPL, 5, "TRADES", True, []),
    51: lambda c, r: c.cancelRealTimeBars(r),
    52: lambda c, r: c.reqFundamentalData(r, AAPL, "ReportSnapshot", []),
    53: lambda c, r: c.cancelFundamentalData(r),
    54: lambda c, r: c.calculateImpliedVolatility(r, AAPL_CALL, 5.0, 200.0, []),
    55: lambda c, r: c.calculateOptionPrice(r, AAPL_CALL, 0.3, 200.0, []),
    56: lambda c, r: c.cancelCalculateImpliedVolatility(r),
    57: lambda c, r: c.cancelCalculateOptionPrice(r),
    58: lambda c, r: c.reqGlobalCancel(),
    59: lambda c, r: c.reqMarketDataType(3),
    61: lambda c, r: c.reqPositions(),
    62: lambda c, r: c.reqAccountSummary(r, "All", "NetLiquidation"),
    63: lambda c, r: c.cancelAccountSummary(r),
    64: lambda c, r: c.cancelPositions(),
    65: lambda c, r: c.verifyRequest("app", "1.0"),
    66: lambda c, r: c.verifyMessage("data"),
    67: lambda c, r: c.queryDisplayGroups(r),
    68: lambda c, r: c.subscribeToGroupEvents(r, 1),
    69: lambda c, r: c.updateDisplayGroup(r, f"{CON_ID}@SMART"),
    70: lambda c, r: c.unsubscribeFromGroupEvents(r),
    71: lambda c, r: c.startApi(),
    72: lambda c, r: c.verifyAndAuthRequest("app", "1.0", "key"),
    73: lambda c, r: c.verifyAndAuthMessage("data", "response"),
    74: lambda c, r: c.reqPositionsMulti(r, ACCOUNT, ""),
    75: lambda c, r: c.cancelPositionsMulti(r),
    76: lambda c, r: c.reqAccountUpdatesMulti(r, ACCOUNT, "", False),
    77: lambda c, r: c.cancelAccountUpdatesMulti(r),
    78: lambda c, r: c.reqSecDefOptParams(r, "AAPL", "", "STK", CON_ID),
    79: lambda c, r: c.reqSoftDollarTiers(r),
    80: lambda c, r: c.reqFamilyCodes(),
    81: lambda c, r: c.reqMatchingSymbols(r, "AA"),
    82: lambda c, r: c.reqMktDepthExchanges(),
    83: lambda c, r: c.reqSmartComponents(r, "9c0001"),
    84: lambda c, r: c.reqNewsArticle(r, "BRFG", "BRFG$1", []),
    85: lambda c, r: c.reqNewsProviders(),
    86: lambda c, r: c.reqHistoricalNews(r, CON_ID, "BRFG", "", "", 10, []),
    87: lambda c, r: c.reqHeadTimeStamp(r, AAPL, "TRADES", True, 1),
    88: lambda c, r: c.reqHistogramData(r, AAPL, True, "1 week"),
    89: lambda c, r: c.cancelHistogramData(r),
    90: lambda c, r: c.cancelHeadTimeStamp(r),
    91: lambda c, r: c.reqMarketRule(26),
    92: lambda c, r: c.reqPnL(r, ACCOUNT, ""),
    93: lambda c, r: c.cancelPnL(r),
    94: lambda c, r: c.reqPnLSingle(r, ACCOUNT, "", CON_ID),
    95: lambda c, r: c.cancelPnLSingle(r),
    96: lambda c, r: c.reqHistoricalTicks(r, AAPL, "", TICKS_END, 10, "TRADES", 1, 0, []),
    97: lambda c, r: c.reqTickByTickData(r, AAPL, "Last", 0, False),
    98: lambda c, r: c.cancelTickByTickData(r),
    99: lambda c, r: c.reqCompletedOrders(False),
    100: lambda c, r: c.reqWshMetaData(r),
    101: lambda c, r: c.cancelWshMetaData(r),
    102: lambda c, r: c.reqWshEventData(r, WshEventData(conId=CON_ID)),
    103: lambda c, r: c.cancelWshEventData(r),
    104: lambda c, r: c.reqUserInfo(r),
    105: lambda c, r: c.send(105),  # IB's reqCurrentTimeInMillis; ib_async has no method
}
"""How ib_async's client sends each message of the table, with request id ``r``."""


def _first_error(ib: IB, req_id: int, code: int) -> Expect:
    return Expect(ib.errorEvent, lambda req, err, *_: (req, err) == (req_id, code))


@pytest.mark.parametrize("msg_id", sorted(UNSERVED))
async def test_every_message_unserved_gets_ibs_error_on_its_own_id(
    gateway: SimulatedGateway, ib: IB, msg_id: int
) -> None:
    entry = UNSERVED[msg_id]
    gateway.withdraw(msg_id)  # a served message becomes one this login does not get
    req_id = 7000 + msg_id
    expected_id = NO_ID if entry.id_at is None else req_id
    text = entry.text.format(req_id=expected_id, msg_id=msg_id)
    error = Expect(ib.errorEvent, lambda *args: args[:3] == (expected_id, entry.code, text))
    CALLS[msg_id](ib.client, req_id)
    await error.wait(WITHIN_S)
    assert ib.isConnected()


def test_the_walk_sends_every_message_of_the_table() -> None:
    assert CALLS.keys() == UNSERVED.keys()


IB_CALLS: dict[str, tuple[int, Callable[[IB], object]]] = {
    # awaited: the call itself must end
    "reqHeadTimeStampAsync": (87, lambda ib: ib.reqHeadTimeStampAsync(AAPL, "TRADES", True, 1)),
    "reqMatchingSymbolsAsync": (81, lambda ib: ib.reqMatchingSymbolsAsync("AA")),
    "reqSecDefOptParamsAsync": (
        78,
        lambda ib: ib.reqSecDefOptParamsAsync("AAPL", "", "STK", CON_ID),
    ),
    "reqHistogramDataAsync": (88, lambda ib: ib.reqHistogramDataAsync(AAPL, True, "1 week")),
    "reqHistoricalTicksAsync": (
        96,
        lambda ib: ib.reqHistoricalTicksAsync(AAPL, "", TICKS_END, 10, "TRADES", True),
    ),
    "reqFundamentalDataAsync": (52, lambda ib: ib.reqFundamentalDataAsync(AAPL, "ReportSnapshot")),
    "reqScannerDataAsync": (22, lambda ib: ib.reqScannerDataAsync(SCAN)),
    "calculateImpliedVolatilityAsync": (
        54,
        lambda ib: ib.calculateImpliedVolatilityAsync(AAPL_CALL, 5.0, 200.0),
    ),
    "calculateOptionPriceAsync": (
        55,
        lambda ib: ib.calculateOptionPriceAsync(AAPL_CALL, 0.3, 200.0),
    ),
    "reqNewsArticleAsync": (84, lambda ib: ib.reqNewsArticleAsync("BRFG", "BRFG$1")),
    "reqHistoricalNewsAsync": (
        86,
        lambda ib: ib.reqHistoricalNewsAsync(CON_ID, "BRFG", "", "", 10),
    ),
    "getWshMetaDataAsync": (100, lambda ib: ib.getWshMetaDataAsync()),
    "getWshEventDataAsync": (102, lambda ib: ib.getWshEventDataAsync(WshEventData(conId=CON_ID))),
    "reqUserInfoAsync": (104, lambda ib: ib.reqUserInfoAsync()),
    "reqSmartComponentsAsync": (83, lambda ib: ib.reqSmartComponentsAsync("9c0001")),
    # subscriptions and fire-and-forget: they return at once and learn of a refusal only
    # from the error event
    "reqMktDepth": (10, lambda ib: ib.reqMktDepth(AAPL)),
    "reqRealTimeBars": (50, lambda ib: ib.reqRealTimeBars(AAPL, 5, "TRADES", True)),
    "reqTickByTickData": (97, lambda ib: ib.reqTickByTickData(AAPL, "Last")),
    "reqScannerSubscription": (22, lambda ib: ib.reqScannerSubscription(SCAN)),
    "exerciseOptions": (21, lambda ib: ib.exerciseOptions(AAPL_CALL, 1, 1, ACCOUNT, 0)),
}
"""ib_async calls whose message the simulator does not serve: name → (message id, call)."""


@pytest.mark.parametrize("name", sorted(IB_CALLS))
async def test_an_unserved_ib_async_call_ends_within_a_second_with_an_error_on_its_id(
    gateway: SimulatedGateway, ib: IB, name: str
) -> None:
    msg_id, call = IB_CALLS[name]
    assert gateway.handler(msg_id) is None
    req_id = ib.client.getReqId() + 1  # the id ib_async gives the request it sends next
    error = _first_error(ib, req_id, UNSERVED[msg_id].code)
    pending = call(ib)
    if inspect.isawaitable(pending):
        await asyncio.wait_for(pending, WITHIN_S)
    await error.wait(WITHIN_S)


async def test_a_served_request_with_bad_fields_is_refused_on_its_own_id(ib: IB) -> None:
    error = _first_error(ib, 4242, 321)
    ib.client.send(20, 4242, "not-a-conId")  # reqHistoricalData cut short after its reqId
    await error.wait(WITHIN_S)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), WITHIN_S)
