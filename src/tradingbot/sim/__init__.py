"""A simulated IB Gateway that speaks the real TWS socket protocol on loopback.

``async with SimulatedGateway(port=0) as gw:`` then connect any TWS API client (ib_async,
IB's ibapi) to ``127.0.0.1:gw.port``. ``tradingbot sim`` runs the same server standalone.
"""

from tradingbot.sim.server import Session, SimulatedGateway

__all__ = ["Session", "SimulatedGateway"]
