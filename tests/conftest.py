import os

import pytest
import torch
from threadpoolctl import threadpool_limits
from xdist.scheduler import LoadScopeScheduling

from eqfree import systems

# One thread each for OpenMM here (it reads this when a test first builds a platform) and for every library in
# each process a test starts (pytest-xdist workers, CLI commands, executors' workers): on 2 cores shared by 4
# workers, more threads only wait (alanine dipeptide, 2 × 10⁴ steps under a load of 4–5: 5.2–6.3 s wall with one
# OpenMM thread, 6.9–13.8 s with two; the same trajectory).
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENMM_CPU_THREADS"):
    os.environ.setdefault(variable, "1")


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Tests share 2 cores with each other: one intra-op thread each for torch and for the BLAS libraries
    (numpy's and scipy's OpenBLAS start one thread per core, which, in 4 workers on 2 cores, wait spinning)."""
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield


@pytest.fixture
def fast_slow():
    return systems.get("fast_slow_linear")


@pytest.fixture(scope="session")
def fast_slow_training_data():
    """Eq. (2.1) simulated from (0, 1) until x1 ≈ 10 (50 walkers, dt = 0.5, every 20th step):
    states X (50000, 2) and their labels x1. The default Leimkuhler–Matthews scheme keeps x2's exact law
    N(1, 0.05) at this dt (Euler–Maruyama's would be 0.05128)."""
    trajectories = systems.get("fast_slow_linear").simulate(50, 20_000, dt=0.5, save_every=20, seed=11)
    X = trajectories.isel(time=slice(1, None)).values.reshape(-1, 2)
    return X, X[:, 0].copy()


class ModuleScheduling(LoadScopeScheduling):
    """pytest-xdist's ``--dist loadscope`` (a module's tests on one worker, so an expensive module-scoped fixture
    — a trained model, a long run — is built once, not once per worker), except that each tutorial is a unit of
    its own. Units go out by their number of tests, most first (xdist's default); the one-test units last, the
    tutorials first among them (``pytest_collection_modifyitems``). ``--dist loadgroup`` would do this with
    marks, but pytest-xdist 3.8 renames a marked test through ``item._nodeid``, which pytest 9 no longer reads."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return nodeid if module.endswith("test_tutorials.py") else module


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown (and unused) under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """:class:`ModuleScheduling` for plain ``-n`` (``--dist load``); an explicit ``--dist`` is kept."""
    return ModuleScheduling(config, log) if config.getvalue("dist") == "load" else None


def pytest_collection_modifyitems(items):
    """The tutorials (up to a minute each) first."""
    items.sort(key=lambda item: item.path.name != "test_tutorials.py")
