"""Basic connection test from the setup guide; the same as ``tradingbot check``.

python scripts/test_ibkr_connection.py [--sim] [--symbol AAPL]
"""

import typer

from tradingbot.brokers.ibkr.check import check

if __name__ == "__main__":
    typer.run(check)
