"""Run independent tasks on any ``concurrent.futures.Executor`` — serially in-process by default.

Callers give each task its own seed, derived from the run's seed and the task's index
(:func:`eqfree.seeding.child`, i.e. ``SeedSequence.spawn`` without mutating the parent), so the
numbers do not depend on the executor, on the number of workers or on the order of completion.
The driver collects results as they finish; workers only compute and return arrays.

A dask cluster is an executor too: ``distributed.Client(address).get_executor()``, or
:func:`dask_executor` with a scheduler address (the ``--scheduler`` option of the CLI).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, as_completed
from typing import Any

from .errors import MissingDependencyError
from .progress import progress_bar


def run_tasks(
    function: Callable[..., Any],
    tasks: Sequence[tuple],
    *,
    executor: Executor | None = None,
    progress: bool | None = None,
    desc: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, function(*tasks[index]))`` as each task finishes.

    With ``executor=None`` the tasks run one after the other in this process, in order. With an
    executor they are submitted at once and yielded in order of completion; ``function`` and the
    task arguments must then be picklable for process- and dask-based executors.
    """
    with progress_bar(progress, total=len(tasks), desc=desc, unit="task") as bar:
        if executor is None:
            for index, arguments in enumerate(tasks):
                yield index, function(*arguments)
                bar.update()
            return
        futures = {executor.submit(function, *arguments): index for index, arguments in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
                bar.update()
        finally:  # an error or an abandoned generator cancels what has not started
            for future in futures:
                future.cancel()


@contextlib.contextmanager
def dask_executor(address: str) -> Iterator[Executor]:
    """An executor on the dask cluster whose scheduler listens at ``address`` (``tcp://host:port``)."""
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependencyError(
            "running on a dask cluster needs dask.distributed: pip install 'eqfree[dist]'"
        ) from None
    with Client(address) as client:
        yield client.get_executor()


@contextlib.contextmanager
def executor_for(scheduler: str | None) -> Iterator[Executor | None]:
    """``None`` (serial) when no scheduler address is given, else :func:`dask_executor`."""
    if scheduler is None:
        yield None
    else:
        with dask_executor(scheduler) as executor:
            yield executor
