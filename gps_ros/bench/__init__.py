"""Benchmark scenarios behind ``gps-ros bench NAME``: each prints a table of measured figures.

Every scenario module exposes ``run(options: BenchOptions) -> BenchReport``; the CLI
prints ``report.table()`` and writes ``report.to_json(path)`` when asked.
"""
