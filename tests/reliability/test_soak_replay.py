"""A failed soak run's replay command reproduces its configuration, so its seed draws the
same faults (the CI soak's window and fault counts differ from the long soak's defaults)."""

from __future__ import annotations

import shlex

import pytest
from bench.soak import SoakConfig, config_from_args, replay_command


@pytest.mark.parametrize(
    "cfg",
    [
        SoakConfig(run_seconds=4.0, faults_per_run=(2, 3), settle_s=2.5, jobs=3),
        SoakConfig(db="postgres", kinds=("drop", "stall")),
    ],
)
def test_the_replay_command_parses_back_to_the_failed_run_s_configuration(
    cfg: SoakConfig,
) -> None:
    args = shlex.split(replay_command(cfg, 323067693))
    assert args[:3] == ["python", "-m", "bench.soak"]
    replay = config_from_args(args[3:])
    assert (replay.runs, replay.exact_seed) == (1, 323067693)
    fields = ("run_seconds", "faults_per_run", "settle_s", "db", "kinds")
    assert [getattr(replay, f) for f in fields] == [getattr(cfg, f) for f in fields]


def test_a_bad_fault_count_range_is_refused_with_the_expected_form(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        config_from_args(["--faults-per-run", "6,3"])
    assert "MIN <= MAX" in capsys.readouterr().err
