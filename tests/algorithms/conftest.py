import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (S-step fits are then repeatable and do not
    compete with BLAS), restoring the previous setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
