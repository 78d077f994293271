"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny test models run fastest on one thread; on a busy 2-core machine two threads wait on each other
    (an overfitting test went from 3 s to 70 s while another job held the second core)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
