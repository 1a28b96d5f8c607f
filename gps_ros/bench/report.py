"""Benchmark options and reports: a table on the terminal and the same figures as JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gps_ros.atomic_io import atomic_write


@dataclass(frozen=True)
class BenchOptions:
    """quick: a smoke-sized run (what CI uses); seeds: independent repetitions; seed: the first
    seed; variants: run only these algorithm variants of a scenario (empty: all)."""

    quick: bool = False
    seeds: int = 1
    seed: int = 0
    variants: tuple[str, ...] = ()


@dataclass
class PlotSpec:
    """A learning-curve plot: name -> (x, y) curves, axis labels, horizontal reference lines, and
    whether y is on a log axis."""

    curves: dict[str, tuple[list[float], list[float]]]
    xlabel: str
    ylabel: str
    reference: dict[str, float] = field(default_factory=dict)
    log_y: bool = False


@dataclass
class BenchReport:
    """rows: one dict per table line (same keys in every row); notes: free-text lines after the table."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: PlotSpec | None = None

    def table(self) -> str:
        if not self.rows:
            return f"{self.name}: no rows"
        keys = list(self.rows[0])
        cells = [[_fmt(r.get(k)) for k in keys] for r in self.rows]
        widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
        lines = [f"== bench {self.name} ==", "  ".join(k.ljust(w) for k, w in zip(keys, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        return "\n".join(lines + self.notes)

    def to_json(self, path: str | os.PathLike) -> list[Path]:
        """Write the figures (and, with a plot spec, the learning curves as a PNG next to them)
        atomically (temp file + rename) so an interrupted run never leaves half a file.
        Returns the paths written."""
        payload = {
            "bench": self.name,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "rows": self.rows,
            "notes": self.notes,
        }
        target = Path(path)
        with atomic_write(target, "w", fsync=False) as stream:
            json.dump(payload, stream, indent=2)
        if self.plot is None:
            return [target]
        png = target.with_suffix(".png")
        plot_curves(png, self.plot.curves, self.plot.xlabel, self.plot.ylabel, self.name, self.plot.reference, self.plot.log_y)
        return [target, png]


def plot_curves(
    path: str | os.PathLike,
    curves: dict[str, tuple[list[float], list[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    reference: dict[str, float] | None = None,
    log_y: bool = False,
) -> None:
    """A learning-curve PNG: one line per name -> (x, y); reference: horizontal lines
    (e.g. a paper's figure) by label; log_y: a log y axis. Written atomically like the JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in curves.items():
        ax.plot(x, y, "o-", markersize=3, label=name)
    for label, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="gray", linewidth=1)
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=8, color="gray", va="bottom")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, yscale="log" if log_y else "linear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_write(path, "wb", fsync=False) as stream:
            fig.savefig(stream, format="png", dpi=100)
    finally:
        plt.close(fig)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
