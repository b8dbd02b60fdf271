"""Who may connect: loopback only unless remote access is asked for."""

from __future__ import annotations

import pytest

from tradingbot.sim.server import SimulatedGateway, is_loopback, peer_allowed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.5.6.7", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.1.2.3", False), ("::", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_peers_must_be_loopback_unless_remote_is_allowed() -> None:
    assert peer_allowed(("127.0.0.1", 50000), allow_remote=False)
    assert peer_allowed(("::1", 50000, 0, 0), allow_remote=False)
    assert not peer_allowed(("192.168.1.20", 50000), allow_remote=False)
    assert not peer_allowed(None, allow_remote=False)
    assert peer_allowed(("192.168.1.20", 50000), allow_remote=True)


def test_bad_construction_is_refused_with_the_field() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        SimulatedGateway("10.1.2.3")
    with pytest.raises(ValueError, match="accounts"):
        SimulatedGateway(accounts=())
    with pytest.raises(ValueError, match="accounts"):
        SimulatedGateway(accounts=("DU1,DU2",))
