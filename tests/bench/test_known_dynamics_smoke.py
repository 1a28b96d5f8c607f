"""Smoke runs of the known-dynamics GPS benchmarks (quick sizes; no timing limits)."""

import numpy as np
import pytest

from gps_ros.bench.known_dynamics_scenarios import SCENARIOS
from gps_ros.bench.report import BenchOptions


@pytest.mark.parametrize("name", ["vgps-swimmer", "cgps-swimmer", "cgps-walker", "swimmer-direct-search"])
def test_quick_run_reports_learning_curve(name, tmp_path):
    report = SCENARIOS[name](BenchOptions(quick=True))
    assert [r["iteration"] for r in report.rows] == [1, 2]
    for row in report.rows:
        costs = ("cost_deterministic",) if name == "swimmer-direct-search" else ("cost_stochastic", "cost_deterministic")
        for key in (*costs, "ddp_cost", "distance"):
            assert np.isfinite(row[key])
        assert row["ddp_cost"] > 0
    assert set(report.plot.curves) == {f"{key} seed 0" for key in costs}
    assert any("initial DDP" in note for note in report.notes)
    if name == "cgps-walker":
        assert all(0 <= r["test_walked"] <= 2 for r in report.rows)
    written = report.to_json(tmp_path / f"{name}.json")
    assert all(path.exists() for path in written)
