"""The README results table: last iteration per seed, mean ± std over seeds, paper figure beside."""

import json

import pytest

from gps_ros.bench.results_table import BEGIN, END, results_table, update_readme


def _row(seed, iteration, train, held_out, dist):
    return {"variant": "off-policy classic", "seed": seed, "iteration": iteration, "samples": 45 * iteration,
            "train_success": train, "held_out_success": held_out, "held_out_dist_mean": dist}


def test_table_uses_each_seeds_last_iteration(tmp_path):
    rows = [_row(0, 1, 0.0, 0.0, 0.3), _row(0, 2, 1.0, 0.5, 0.02), _row(1, 1, 0.0, 0.0, 0.3), _row(1, 2, 0.5, 1.0, 0.04)]
    (tmp_path / "mdgps-peg.json").write_text(json.dumps({"bench": "mdgps-peg", "rows": rows}))
    table = results_table(tmp_path).splitlines()
    assert len(table) == 3
    # train: mean(1.0, 0.5) = 75 %, std 25 %; held-out: 75 ± 25 %; distance 0.03 ± 0.01
    assert table[2] == ("| mdgps-peg | off-policy classic | 2 | 2 | 90 | 75 ± 25 % | 75 ± 25 % | 0.030 ± 0.010 | "
                        "70.7 % (MDGPS Table 1, iter 12) |")


def test_readme_markers_are_required_and_text_outside_them_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    update_readme(readme, "| new |")
    assert readme.read_text() == f"intro\n{BEGIN}\n| new |\n{END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="expected the markers"):
        update_readme(readme, "| new |")


def test_a_foreign_json_file_is_named(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(ValueError, match=r"other\.json: expected a gps-ros bench JSON file"):
        results_table(tmp_path)


def test_known_dynamics_benchmarks_get_their_own_table(tmp_path):
    def row(seed, iteration, det, dist):
        return {"seed": seed, "iteration": iteration, "beta": 1.0, "ddp_cost": 5.0, "cost_stochastic": 2 * det,
                "cost_deterministic": det, "distance": dist, "fell": 0, "ddp_distance": 0.9}
    rows = [row(0, 1, 9.0, 0.1), row(0, 2, 5.0, 0.5), row(1, 1, 8.0, 0.0), row(1, 2, 6.0, 0.3)]
    (tmp_path / "vgps-swimmer.json").write_text(json.dumps({"bench": "vgps-swimmer", "rows": rows}))
    (tmp_path / "mdgps-peg.json").write_text(json.dumps({"bench": "mdgps-peg", "rows": [_row(0, 1, 1.0, 1.0, 0.01)]}))
    lines = results_table(tmp_path).splitlines()
    assert lines[2].startswith("| mdgps-peg |") and lines[3] == ""
    assert lines[4].startswith("| scenario | seeds | iteration | deterministic cost")
    # last iterations: deterministic 5 and 6 -> 5.5 ± 0.5; / DDP (5): 1.1 ± 0.1; distance 0.4 ± 0.1
    assert lines[6] == ("| vgps-swimmer | 2 | 2 | 5.500 ± 0.500 | 11.000 ± 1.000 | 5.000 ± 0.000 | 1.100 ± 0.100 | "
                        "0.400 ± 0.100 | – | deterministic ≤ 1.1 × DDP, forward |")


def test_direct_search_reference_has_no_stochastic_cost(tmp_path):
    rows = [{"seed": 0, "iteration": 1, "evaluations": 16, "sigma": 0.1, "ddp_cost": 0.4, "cost_deterministic": 0.3,
             "distance": 1.5, "fell": 0, "ddp_distance": 1.4}]
    (tmp_path / "swimmer-direct-search.json").write_text(json.dumps({"bench": "swimmer-direct-search", "rows": rows}))
    line = results_table(tmp_path).splitlines()[-1]
    assert line == ("| swimmer-direct-search | 1 | 1 | 0.300 ± 0.000 | – | 0.400 ± 0.000 | 0.750 ± 0.000 | "
                    "1.500 ± 0.000 | – | – (reference: CMA-ES on the policy's weights, not GPS) |")
