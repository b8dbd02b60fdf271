"""IB's answer to a request the simulator does not serve: an error on that request's own id.

A client that awaits a request's answer is released by an error carrying the request's id,
and only by that: an error on −1 leaves ib_async's ``reqHeadTimeStampAsync`` and its kin
waiting for ever. So :data:`UNSERVED` lists every outgoing message of the TWS API's text
protocol, says where each carries its request id and what IB answers when it cannot serve
it for this login. A message that carries no id is answered on −1, as IB does.

Where a message carries its id: ``id_at`` is the index in its fields, message id at 0, so
it comes after the version field in the older messages that have one (``[10, 5, reqId, …]``)
and right after the message id in the newer ones (``[87, reqId, …]``); ``replaceFA`` puts it
last (``[19, 1, faDataType, xml, reqId]``); ``placeOrder`` and ``cancelOrder`` carry the order
id there. ``reqMarketRule`` carries a market rule id, not a request id. The positions are
those of ib_async 2.1's ``Client`` (``client.py``, every ``self.send``), which the tests hold
the table to; it sends 1–25, 49–59 and 61–104. IB's own client (``ibapi/message.py``, ``OUT``)
adds 105 ``reqCurrentTimeInMillis`` (server version 197 and later); its 106–109
(cancelContractData, cancelHistoricalTicks, reqConfig, updateConfig) exist only as protobuf
messages (server version 215 and later), which a session at 178 never carries, so they are
left out.

Where each code comes from, family by family:

- Market data the login has no subscription for. ``reqMktData``: 354, IB's message-code
  table. ``reqMktDepth``: 10092, recorded from a read-only IB Gateway (server version
  206) by the ibkr-go project (``market_depth_aapl``). ``reqRealTimeBars``: 420 "Invalid
  Real-time Query", recorded there too (``realtime_bars_aapl``; a paper gateway at server
  version 200 sent 10089). ``reqTickByTickData``: 10189 "Failed to request tick-by-tick
  data", recorded from a paper gateway at server version 200
  (``tick_by_tick_last_permission_refusal``).
- History (the HMDS farm). ``reqHistoricalData``, ``reqHeadTimeStamp`` and
  ``reqHistogramData``: 162 with IB's "No market data permissions" text, as a live gateway
  answers a login without the venue's data (ibkr-go ``client_live_test.go``).
  ``reqHistoricalTicks``: 10187 "Failed to request historical ticks", recorded in the same
  campaign. Cancels of a query that is not running: 366, IB's message-code table.
- Scanner. ``reqScannerSubscription``: 490 "You must subscribe for additional permissions to
  run scanner" (IbPy issue 54, a real TWS answer; ibkr-go recorded the same code from a
  gateway at server version 200). Cancelling an unknown scan: 365 (code table; ibkr-go saw it
  after a redundant cancel).
- Fundamentals, news and Wall Street Horizon. ``reqFundamentalData``: 10358 "Fundamentals
  data is not allowed.", what every report type drew on two gateways at server version 200
  (ibkr-go). ``reqWshMetaData``/``reqWshEventData``: 10276 "News feed is not allowed.",
  recorded from a live gateway (ibkr-go ``api_wsh_variants_aapl``; ib_insync issue 617); by
  the same token for the news article and historical news of a login without news feeds.
  The WSH cancels: 10280/10284, IB's code table.
- Financial-advisor data on an account that is not an advisor's: 321 "FA data operations
  ignored for non FA customers.", recorded from gateways at server version 206 (ibkr-go
  ``request_fa``, ``api_fa_replace_non_fa``).
- Definitions the simulated universe does not hold (it lists stocks, no options): option
  chains, exercise and option calculations get 200 "No security definition has been found
  for the request", IB's answer for a contract it does not know.
- Orders. ``placeOrder``: 10015 "Trading is not allowed in the API." and ``cancelOrder``:
  10147 "OrderId … that needs to be cancelled is not found." (code table; the second also
  recorded by ibkr-go). Both are served; their entries say what a withdrawn service answers.
- Cancels of a stream that is not running: IB's "not found" code of the family where the
  code table names one (300 market data, 310 depth, 365 scanner, 366 history); 300 for the
  other market-data streams (real-time bars, tick-by-tick, fundamentals, option calculations).
- Everything else: 322 "Error processing request" when the message carries an id, 321
  "Error validating request" on −1 when it carries none. Those are IB's codes for a request
  it read but will not carry out (a live gateway answers a refused exercise and too many
  account summaries with 322, a read-only session's ``reqIds``, ``reqOpenOrders`` and
  ``reqCompletedOrders`` with 321 on −1). ib_async ends an awaited request on 322 but treats
  321 as a warning, so here 321 goes only to messages without an id, whose awaits no error
  can end.

Texts in IB's validating/processing form name the message id where IB puts its own tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from tradingbot.sim.handlers_contract import NO_SECURITY_TEXT
from tradingbot.sim.handlers_history import HMDS

NO_ID: Final = -1


@dataclass(frozen=True, slots=True)
class Unserved:
    """One outgoing TWS API message and IB's refusal of it.

    ``text`` may name ``{req_id}`` and ``{msg_id}``; :meth:`answer` fills them in.
    """

    msg_id: int
    call: str
    id_at: int | None
    code: int
    text: str

    def req_id(self, fields: Sequence[str]) -> int:
        """The id the request carries, or −1 when it carries none (or not a number)."""
        if self.id_at is None or len(fields) <= self.id_at:
            return NO_ID
        try:
            return int(fields[self.id_at])
        except ValueError:
            return NO_ID

    def answer(self, fields: Sequence[str]) -> tuple[int, int, str]:
        """``(reqId, code, text)`` of the error IB sends for this request."""
        req_id = self.req_id(fields)
        return req_id, self.code, self.text.format(req_id=req_id, msg_id=self.msg_id)


def _validating(cause: str) -> str:
    return f"Error validating request:-'{{msg_id}}' : cause - {cause}"


def _processing(cause: str) -> str:
    return f"Error processing request:-'{{msg_id}}' : cause - {cause}"


NOT_SUBSCRIBED = (
    "Requested market data is not subscribed. Check API status by selecting the Account menu "
    "then under Management choose Market Data Subscription Manager and/or availability of "
    "delayed data."
)
NO_PERMISSIONS = "No market data permissions."
NO_TICKER = "Can't find EId with tickerId:{req_id}"
NO_QUERY = "No historical data query found for ticker id:{req_id}"
NO_DEPTH = "Deep market data is not supported for this combination of security type/exchange"
NO_SCANNER = "You must subscribe for additional permissions to run scanner"
NO_SCAN = "No scanner subscription found for ticker id:{req_id}"
NO_NEWS = "News feed is not allowed."
NOT_FA = "FA data operations ignored for non FA customers."

_ROWS: tuple[tuple[int, str, int | None, int, str], ...] = (
    (1, "reqMktData", 2, 354, NOT_SUBSCRIBED),
    (2, "cancelMktData", 2, 300, NO_TICKER),
    (3, "placeOrder", 1, 10015, "Trading is not allowed in the API."),
    (4, "cancelOrder", 2, 10147, "OrderId {req_id} that needs to be cancelled is not found."),
    (5, "reqOpenOrders", None, 321, _validating("Open orders are not available.")),
    (6, "reqAccountUpdates", None, 321, _validating("Account updates are not available.")),
    (7, "reqExecutions", 2, 322, _processing("Executions are not available.")),
    (8, "reqIds", None, 321, _validating("Order ids are not available.")),
    (9, "reqContractDetails", 2, 200, NO_SECURITY_TEXT),
    (10, "reqMktDepth", 2, 10092, NO_DEPTH),
    (11, "cancelMktDepth", 2, 310, "Can't find the subscribed market depth with tickerId:{req_id}"),
    (12, "reqNewsBulletins", None, 321, _validating("News bulletins are not available.")),
    (13, "cancelNewsBulletins", None, 321, _validating("News bulletins are not available.")),
    (14, "setServerLogLevel", None, 321, _validating("The log level cannot be set.")),
    (15, "reqAutoOpenOrders", None, 321, _validating("Auto open orders are not available.")),
    (16, "reqAllOpenOrders", None, 321, _validating("Open orders are not available.")),
    (17, "reqManagedAccts", None, 321, _validating("Managed accounts are not available.")),
    (18, "requestFA", None, 321, _validating(NOT_FA)),
    (19, "replaceFA", 4, 321, _validating(NOT_FA)),
    (20, "reqHistoricalData", 1, 162, f"{HMDS}{NO_PERMISSIONS}"),
    (21, "exerciseOptions", 2, 200, NO_SECURITY_TEXT),
    (22, "reqScannerSubscription", 1, 490, NO_SCANNER),
    (23, "cancelScannerSubscription", 2, 365, NO_SCAN),
    (24, "reqScannerParameters", None, 321, _validating("Scanner parameters are not available.")),
    (25, "cancelHistoricalData", 2, 366, NO_QUERY),
    (49, "reqCurrentTime", None, 321, _validating("The current time is not available.")),
    (50, "reqRealTimeBars", 2, 420, f"Invalid Real-time Query:{NO_PERMISSIONS}"),
    (51, "cancelRealTimeBars", 2, 300, NO_TICKER),
    (52, "reqFundamentalData", 2, 10358, "Fundamentals data is not allowed."),
    (53, "cancelFundamentalData", 2, 300, NO_TICKER),
    (54, "calculateImpliedVolatility", 2, 200, NO_SECURITY_TEXT),
    (55, "calculateOptionPrice", 2, 200, NO_SECURITY_TEXT),
    (56, "cancelCalculateImpliedVolatility", 2, 300, NO_TICKER),
    (57, "cancelCalculateOptionPrice", 2, 300, NO_TICKER),
    (58, "reqGlobalCancel", None, 321, _validating("Orders cannot be cancelled.")),
    (59, "reqMarketDataType", None, 321, _validating("The market data type cannot be set.")),
    (61, "reqPositions", None, 321, _validating("Positions are not available.")),
    (62, "reqAccountSummary", 2, 322, _processing("The account summary is not available.")),
    (63, "cancelAccountSummary", 2, 322, _processing("No account summary to cancel.")),
    (64, "cancelPositions", None, 321, _validating("Positions are not available.")),
    (65, "verifyRequest", None, 321, _validating("API verification is not required.")),
    (66, "verifyMessage", None, 321, _validating("API verification is not required.")),
    (67, "queryDisplayGroups", 2, 322, _processing("Display groups are not available.")),
    (68, "subscribeToGroupEvents", 2, 322, _processing("Display groups are not available.")),
    (69, "updateDisplayGroup", 2, 322, _processing("Display groups are not available.")),
    (70, "unsubscribeFromGroupEvents", 2, 322, _processing("Display groups are not available.")),
    (71, "startApi", None, 321, _validating("The API is already started.")),
    (72, "verifyAndAuthRequest", None, 321, _validating("API verification is not required.")),
    (73, "verifyAndAuthMessage", None, 321, _validating("API verification is not required.")),
    (74, "reqPositionsMulti", 2, 322, _processing("Positions by model are not available.")),
    (75, "cancelPositionsMulti", 2, 322, _processing("Positions by model are not available.")),
    (76, "reqAccountUpdatesMulti", 2, 322, _processing("Account updates are not available.")),
    (77, "cancelAccountUpdatesMulti", 2, 322, _processing("Account updates are not available.")),
    (78, "reqSecDefOptParams", 1, 200, NO_SECURITY_TEXT),
    (79, "reqSoftDollarTiers", 1, 322, _processing("Soft dollar tiers are not available.")),
    (80, "reqFamilyCodes", None, 321, _validating("Family codes are not available.")),
    (81, "reqMatchingSymbols", 1, 322, _processing("Symbol search is not available.")),
    (82, "reqMktDepthExchanges", None, 321, _validating("Depth exchanges are not available.")),
    (83, "reqSmartComponents", 1, 322, _processing("Smart components are not available.")),
    (84, "reqNewsArticle", 1, 10276, NO_NEWS),
    (85, "reqNewsProviders", None, 321, _validating("News providers are not available.")),
    (86, "reqHistoricalNews", 1, 10276, NO_NEWS),
    (87, "reqHeadTimeStamp", 1, 162, f"{HMDS}{NO_PERMISSIONS}"),
    (88, "reqHistogramData", 1, 162, f"{HMDS}{NO_PERMISSIONS}"),
    (89, "cancelHistogramData", 1, 366, NO_QUERY),
    (90, "cancelHeadTimeStamp", 1, 366, NO_QUERY),
    (91, "reqMarketRule", None, 321, _validating("Market rules are not available.")),
    (92, "reqPnL", 1, 322, _processing("PnL is not available.")),
    (93, "cancelPnL", 1, 322, _processing("PnL is not available.")),
    (94, "reqPnLSingle", 1, 322, _processing("PnL is not available.")),
    (95, "cancelPnLSingle", 1, 322, _processing("PnL is not available.")),
    (96, "reqHistoricalTicks", 1, 10187, f"Failed to request historical ticks:{NO_PERMISSIONS}"),
    (97, "reqTickByTickData", 1, 10189, f"Failed to request tick-by-tick data.{NO_PERMISSIONS}"),
    (98, "cancelTickByTickData", 1, 300, NO_TICKER),
    (99, "reqCompletedOrders", None, 321, _validating("Completed orders are not available.")),
    (100, "reqWshMetaData", 1, 10276, NO_NEWS),
    (101, "cancelWshMetaData", 1, 10280, "Failed cancel WSH metadata"),
    (102, "reqWshEventData", 1, 10276, NO_NEWS),
    (103, "cancelWshEventData", 1, 10284, "Fail cancel WSH event data"),
    (104, "reqUserInfo", 1, 322, _processing("User info is not available.")),
    (105, "reqCurrentTimeInMillis", None, 321, _validating("Needs server version 197.")),
)

UNSERVED: Final[Mapping[int, Unserved]] = {row[0]: Unserved(*row) for row in _ROWS}
"""Message id → where its request id sits and IB's refusal of it."""


def request_id(fields: Sequence[str]) -> int:
    """The id a request carries (by its message id's entry), −1 when it carries none."""
    entry = UNSERVED.get(int(fields[0]))
    return NO_ID if entry is None else entry.req_id(fields)
