"""Comprehensive paper-trading test from the setup guide.

    python scripts/test_ibkr_paper_trading.py [--skip-orders] [--symbol MSFT] [--sim]

Refuses live ports and live accounts. Exit code 0 only when every step passed.
"""

import sys

from tradingbot.brokers.ibkr.paper_test import main

if __name__ == "__main__":
    sys.exit(main())
