"""metrics.json and learning_curve.png of a run, each replaced atomically after every iteration."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from gps_ros.atomic_io import atomic_write

METRICS = "metrics.json"
PLOT = "learning_curve.png"



def write_results(output_dir: str | os.PathLike, config: dict, history: Sequence, done: bool = False) -> tuple[Path, Path]:
    """metrics.json ({"config", "iterations": [IterationMetrics dicts], "done"}) and the
    learning curve (mean sample cost and success per iteration) in ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": config, "iterations": [vars(m) for m in history], "done": done}
    metrics_path, plot_path = out / METRICS, out / PLOT
    with atomic_write(metrics_path, "w") as stream:
        json.dump(payload, stream, indent=2)
    with atomic_write(plot_path, "wb") as stream:
        _plot(stream, config, history)
    return metrics_path, plot_path


def _plot(stream, config: dict, history: Sequence) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [m.iteration for m in history]
    fig, (ax_cost, ax_succ) = plt.subplots(1, 2, figsize=(10, 4))
    ax_cost.plot(its, [m.mean_sample_cost for m in history], "o-")
    ax_cost.set(xlabel="iteration", ylabel="mean cost of the samples", title=f"{config['algorithm']} on {config['task']}")
    ax_succ.plot(its, [100 * m.success_rate for m in history], "o-")
    ax_succ.set(xlabel="iteration", ylabel="success (%)", ylim=(-5, 105))
    fig.tight_layout()
    fig.savefig(stream, format="png", dpi=100)
    plt.close(fig)
