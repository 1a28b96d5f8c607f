"""How many CPU threads torch uses for a piece of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``n`` inside the block (n <= 0: left as they are).

    The policies' networks are small: on a few shared cores extra threads only add
    synchronisation, and they stall badly when other processes hold the cores (S-steps
    measured 10-100x slower under contention than with one thread).
    """
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
