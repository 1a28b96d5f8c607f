"""One torch thread for these tests: the networks are tiny, and intra-op threads only
contend with other processes on a small CI machine (several-fold slower under load)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def single_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
