import pytest
import torch

from eqfree import systems


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Tests share 2 cores with each other; one intra-op thread each keeps timings predictable."""
    torch.set_num_threads(1)


@pytest.fixture
def fast_slow():
    return systems.get("fast_slow_linear")


@pytest.fixture(scope="session")
def fast_slow_training_data():
    """Eq. (2.1) simulated from (0, 1) until x1 ≈ 10 (50 walkers, dt = 0.5, every 20th step):
    states X (50000, 2) and their labels x1. Euler–Maruyama's x2 variance at this dt is 0.05128
    (exact law N(1, 0.05): W1 between the two is 0.0023)."""
    trajectories = systems.get("fast_slow_linear").simulate(50, 20_000, dt=0.5, save_every=20, seed=11)
    X = trajectories.isel(time=slice(1, None)).values.reshape(-1, 2)
    return X, X[:, 0].copy()
