"""Contracts: creation without a round trip, qualification once per contract.

The setup guide calls ``client.create_contract("AAPL")`` without ``await``, so creating is
local; IB is asked (reqContractDetails) the first time a contract is used, and the answer —
conId, primary exchange, minimum tick — is cached for the life of the client, since a
listing's definition does not change intraday. An unknown symbol (IB error 200, or no
details) becomes :class:`UnknownSymbolError` naming the symbol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ib_async import Contract

from tradingbot.brokers.ibkr import mapping
from tradingbot.brokers.ibkr.validation import validate_symbol
from tradingbot.domain import ContractRef
from tradingbot.errors import InvalidOrderError, UnknownSymbolError

_SEC_TYPES = frozenset({"STK", "ETF", "OPT", "FUT", "CASH", "IND", "CFD", "BOND", "FUND"})


def create_contract(
    symbol: str, sec_type: str = "STK", exchange: str = "SMART", currency: str = "USD"
) -> ContractRef:
    """An unqualified contract; checked for shape only (nothing is sent)."""
    clean = validate_symbol(symbol)
    if sec_type.upper() not in _SEC_TYPES:
        allowed = ", ".join(sorted(_SEC_TYPES))
        raise InvalidOrderError(f"sec_type must be one of {allowed}, got {sec_type!r}")
    if not exchange.strip() or not currency.strip():
        raise InvalidOrderError("exchange and currency must not be empty")
    return ContractRef(
        symbol=clean,
        sec_type=sec_type.upper(),
        exchange=exchange.strip().upper(),
        currency=currency.strip().upper(),
    )


def to_ib(contract: ContractRef) -> Any:
    """The ib_async Contract for a reference; a qualified one travels by conId."""
    return Contract(
        conId=contract.con_id,
        symbol=contract.symbol,
        secType=contract.sec_type,
        exchange=contract.exchange,
        primaryExchange=contract.primary_exchange,
        currency=contract.currency,
    )


class ContractBook:
    """Qualified contracts by (symbol, sec_type, exchange, currency), and their IB objects."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, str, str], ContractRef] = {}
        self._ib_by_con_id: dict[int, Any] = {}
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    @staticmethod
    def key(contract: ContractRef) -> tuple[str, str, str, str]:
        return (contract.symbol, contract.sec_type, contract.exchange, contract.currency)

    def cached(self, contract: ContractRef) -> ContractRef | None:
        if contract.is_qualified and contract.con_id in self._ib_by_con_id:
            return contract
        return self._by_key.get(self.key(contract))

    def ib_contract(self, contract: ContractRef) -> Any:
        """The qualified ib_async Contract (the same object every time, as ib_async wants)."""
        found = self._ib_by_con_id.get(contract.con_id)
        return found if found is not None else to_ib(contract)

    async def qualify(self, contract: ContractRef, ib: Any, timeout_s: float) -> ContractRef:
        """Ask IB once per contract; concurrent callers share the one request."""
        hit = self.cached(contract)
        if hit is not None:
            return hit
        key = self.key(contract)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self.cached(contract)
            if hit is not None:
                return hit
            details = await asyncio.wait_for(ib.reqContractDetailsAsync(to_ib(contract)), timeout_s)
            matches = [d for d in details or [] if d.contract is not None]
            if contract.sec_type:
                matches = [d for d in matches if d.contract.secType == contract.sec_type] or matches
            if not matches:
                raise UnknownSymbolError(
                    f"IB knows no {contract.sec_type} contract {contract.symbol!r} on "
                    f"{contract.exchange} in {contract.currency} (error 200); check the symbol"
                )
            if len(matches) > 1:
                names = ", ".join(
                    f"{d.contract.primaryExchange}:{d.contract.conId}" for d in matches
                )
                raise UnknownSymbolError(
                    f"{contract.symbol!r} is ambiguous ({names}); pass the primary exchange"
                )
            details0 = matches[0]
            ib_contract = details0.contract
            ib_contract.exchange = contract.exchange
            qualified = mapping.contract_ref(ib_contract, details0.minTick, details0.longName)
            self._by_key[key] = qualified
            self._ib_by_con_id[qualified.con_id] = ib_contract
            return qualified
