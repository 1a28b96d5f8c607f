"""Where the package's shared files (config/, launch/) are, however it was installed."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def share_dir() -> Path:
    """The folder holding config/ and launch/.

    A source checkout (or `pip install -e .`) uses the repository root; a CMake/colcon or
    plain pip install uses <prefix>/share/gps_ros, where <prefix> holds
    lib/pythonX.Y/site-packages/gps_ros.
    """
    source_root = _PACKAGE.parent
    if (source_root / "package.xml").is_file() and (source_root / "config").is_dir():
        return source_root
    installed = _PACKAGE.parents[3] / "share" / "gps_ros"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(
        f"gps_ros share folder: expected {source_root / 'config'} (source checkout) or {installed} (install), "
        "found neither; build with `make build` or colcon, or `pip install` the package"
    )


def config_path(*parts: str) -> Path:
    """A path under the package's config/ folder, e.g. ``config_path("tasks", "pr2_peg.yaml")``."""
    return share_dir().joinpath("config", *parts)
