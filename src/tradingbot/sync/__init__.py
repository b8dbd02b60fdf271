"""IBKR → database: PositionSyncService, the order journal, average-cost P&L, lifecycle."""

from tradingbot.sync.journal import DEFAULT_ORDER_REF_PREFIX, OrderJournal
from tradingbot.sync.position_sync import PositionSyncService
from tradingbot.sync.reconcile import SyncReport

__all__ = ["DEFAULT_ORDER_REF_PREFIX", "OrderJournal", "PositionSyncService", "SyncReport"]
