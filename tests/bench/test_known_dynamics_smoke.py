"""Smoke runs of the known-dynamics GPS benchmarks (quick sizes; no timing limits)."""

import numpy as np
import pytest

from gps_ros.bench.known_dynamics_scenarios import SCENARIOS, SETTINGS, _quick, run_scenario, scenario_report
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


def test_seeds_run_apart_report_as_one_run():
    """Rows of --seed 0 and --seed 1 run separately, joined by scenario_report, give the report of
    one --seeds 2 run: the same rows, curves and notes."""
    scenario = _quick(SETTINGS["cgps-swimmer"])
    together = run_scenario(scenario, BenchOptions(seeds=2), lambda line: None)
    apart = [run_scenario(scenario, BenchOptions(seed=seed), lambda line: None) for seed in (0, 1)]
    joined = scenario_report(scenario, apart[0].rows + apart[1].rows)
    assert [(r["seed"], r["iteration"]) for r in joined.rows] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for a, b in zip(joined.rows, together.rows):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in b], rtol=1e-6)
    assert set(joined.plot.curves) == set(together.plot.curves) == {
        f"{key} seed {seed}" for key in ("cost_stochastic", "cost_deterministic") for seed in (0, 1)}
    assert len(joined.notes) == len(together.notes) == 1


@pytest.mark.parametrize("fallen_cost, log_y", [(150.0, False), (1.5e4, True)])
def test_cost_axis_turns_logarithmic_when_costs_span_two_decades(fallen_cost, log_y):
    """A run whose costs span more than a factor of 100 (a fallen walker against its DDP cost) is
    plotted on a log axis, where the other curves stay readable."""
    scenario = _quick(SETTINGS["cgps-walker"])
    row = {"seed": 0, "ddp_cost": 100.0, "cost_stochastic": 120.0, "distance": 1.0, "walked": 2, "test_walked": 2}
    rows = [{**row, "iteration": k, "cost_deterministic": c} for k, c in ((1, 110.0), (2, fallen_cost))]
    assert scenario_report(scenario, rows).plot.log_y is log_y
