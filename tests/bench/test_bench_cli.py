"""Every `gps-ros bench NAME --quick --json FILE` runs end to end and writes its figures.

Smoke only: quick runs are far too small for their figures to mean anything; the real runs
are the benchmark commands themselves (see README)."""

import json

import pytest

from gps_ros.cli import BENCHMARKS, main


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_quick_benchmark_writes_json_rows(name, tmp_path, capsys):
    out = tmp_path / f"{name}.json"
    assert main(["bench", name, "--quick", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["bench"] == name and payload["rows"], "no figures written"
    keys = set(payload["rows"][0])
    assert all(set(row) == keys for row in payload["rows"]), "rows must share their columns"
    if BENCHMARKS[name] == "gps_ros.bench.mdgps_scenarios":  # GPS rows carry the S-step's fit
        losses = [row["s_step_loss"] for row in payload["rows"]]
        assert all(loss >= 0 and loss < float("inf") for loss in losses), losses
    printed = capsys.readouterr().out
    assert f"== bench {name} ==" in printed and str(out) in printed


def test_unknown_variant_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"variants: expected names among"):
        main(["bench", "pointmass-obstacle", "--quick", "--variants", "no-such-variant"])
