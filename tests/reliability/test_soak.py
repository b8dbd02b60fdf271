"""The short soak CI runs on every change: the real bot (``tradingbot run`` in its own
process) against the simulated gateway, with random faults, invariants checked against the
simulator's book after every run. ``python -m bench.soak`` runs the long one.

The seed is fixed so a failure is reproducible; ``TRADINGBOT_SOAK_SEED`` explores others.
A failing run's seed and violations are in the assertion message and the printed table.
"""

from __future__ import annotations

import logging
import os

import pytest
from bench.soak import SoakConfig, soak
from bench.soak_faults import FAULTS

RUNS = int(os.environ.get("TRADINGBOT_SOAK_RUNS", "20"))
SEED = int(os.environ.get("TRADINGBOT_SOAK_SEED", "1"))


@pytest.mark.timeout(900)
async def test_short_soak_keeps_every_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # the squatter's 326 is expected
    cfg = SoakConfig(
        runs=RUNS,
        seed=SEED,
        run_seconds=4.0,
        faults_per_run=(2, 3),
        settle_s=2.5,
        jobs=3,
        kinds=tuple(FAULTS),
    )
    lines: list[str] = []
    results = await soak(cfg, out=lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    failed = [r for r in results if not r.verdict.ok]
    assert len(results) == RUNS
    assert failed == [], "\n".join(
        f"seed {r.seed} ({','.join(r.faults)}): {r.verdict.violations}" for r in failed
    )
