"""One writer per output: a lock file beside a store or model folder, naming the host and process that hold it.

``output_lock(path)`` holds ``PATH.lock`` (a :class:`filelock.SoftFileLock`, which records the holder's
process id and host) while ``path`` is written. A second writer is refused at once with the holder's
PID and host. A lock left behind by a process that no longer runs on this host is taken over, with a
:class:`StaleLockWarning`. The lock is re-entrant within a process (a command that holds it may call
functions that take it again), and its file is removed on release.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

from filelock import SoftFileLock, Timeout

from ..errors import OutputExistsError

_HELD: set[Path] = set()


class StaleLockWarning(UserWarning):
    """A lock of a process that no longer runs was taken over."""


def lock_path(path: str | Path) -> Path:
    """The lock file of an output: ``PATH.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def holder(path: str | Path) -> tuple[int, str] | None:
    """``(pid, host)`` of the process holding the lock of ``path``, ``None`` if nobody (or unreadable)."""
    try:
        pid, host = lock_path(path).read_text().split("\n")[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    return True


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold the lock of ``path`` for the ``with`` block; :class:`~eqfree.errors.OutputExistsError` if another
    process holds it. The folder that will hold ``path`` must exist or be creatable."""
    path = Path(path).absolute()
    if path in _HELD:
        yield path
        return
    file = lock_path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    found = holder(path)
    if found is not None and found[1] == socket.gethostname() and found[0] != os.getpid() and not _runs(found[0]):
        warnings.warn(f"{path}: taking over the lock left by process {found[0]} on {found[1]}, which no longer runs",
                      StaleLockWarning, stacklevel=3)
        file.unlink(missing_ok=True)
    lock = SoftFileLock(file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        pid, host = holder(path) or ("(unknown)", "(unknown)")
        raise OutputExistsError(f"{path} is being written by process {pid} on host {host} (lock file {file}): "
                                "wait for it to finish or stop it; if no such process runs, delete the lock file"
                                ) from None
    _HELD.add(path)
    try:
        yield path
    finally:
        _HELD.discard(path)
        lock.release()
