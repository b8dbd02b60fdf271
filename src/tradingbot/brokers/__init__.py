"""Broker adapters. Interactive Brokers (``tradingbot.brokers.ibkr``) is the one we have."""
