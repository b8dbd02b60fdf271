"""tradingbot: an automated trading bot for Interactive Brokers.

The public surface is re-exported lazily from :mod:`tradingbot.brokers.ibkr` so that
``import tradingbot`` stays cheap and does not pull in ib_async.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
