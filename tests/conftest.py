import pytest
import torch

import systems


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Tests share 2 cores with each other; one intra-op thread each keeps timings predictable."""
    torch.set_num_threads(1)


@pytest.fixture
def fast_slow():
    return systems.get("fast_slow_linear")
