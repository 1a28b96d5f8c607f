"""Smoke tests of the benchmark entry points (small sizes; no timing limits)."""

from gps_ros.bench.dynamics_timing import time_dynamics_fit


def test_timing_benchmark_smoke():
    for shared in (False, True):
        figures = time_dynamics_fit(T=8, dX=3, dU=2, conditions=2, samples=2, max_samples=4, repeats=2, shared_prior=shared)
        assert figures["total_ms"] > 0 and figures["min_ms"] <= figures["total_ms"]
        assert figures["em_iterations"] >= 1 and figures["clusters"] == 2
