"""Tasks on any executor: the same seeds give the same numbers serially, on threads and on a dask cluster."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from eqfree.errors import InputError
from eqfree.parallel import dask_executor, executor_for, run_tasks
from eqfree.seeding import child


def draw(seed, n):
    """A seeded task: n normal draws."""
    return np.random.default_rng(seed).standard_normal(n)


TASKS = [(child(7, i), 5) for i in range(12)]


def results(executor=None) -> np.ndarray:
    """The tasks' results in task order, whatever order they finished in."""
    done = dict(run_tasks(draw, TASKS, executor=executor, progress=False))
    assert sorted(done) == list(range(len(TASKS)))  # every task once
    return np.stack([done[i] for i in range(len(TASKS))])


def test_serial_results_follow_the_seeds():
    np.testing.assert_array_equal(results(), np.stack([draw(child(7, i), 5) for i in range(12)]))


def test_threads_and_a_dask_cluster_give_the_serial_numbers():
    distributed = pytest.importorskip("distributed")
    serial = results()
    with ThreadPoolExecutor(3) as pool:
        np.testing.assert_array_equal(results(pool), serial)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with dask_executor(cluster.scheduler_address) as executor:
            np.testing.assert_array_equal(results(executor), serial)
        with executor_for(cluster.scheduler_address) as executor:  # the CLI's --scheduler
            np.testing.assert_array_equal(results(executor), serial)


def test_no_scheduler_means_serial():
    with executor_for(None) as executor:
        assert executor is None


def test_an_error_in_a_task_reaches_the_caller():
    def fail(i):
        if i == 3:
            raise InputError("task 3 failed")
        return i

    with ThreadPoolExecutor(2) as pool, pytest.raises(InputError, match="task 3 failed"):
        list(run_tasks(fail, [(i,) for i in range(50)], executor=pool, progress=False))
