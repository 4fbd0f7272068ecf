"""The options several commands share, each declared once, and the argument types they parse with.

Every adder takes the subcommand's parser and a ``help`` (what the option means there); the flag
names follow the vocabulary of the library: ``--walkers`` (``n_walkers``), ``--samples``
(``n_samples``), ``--steps`` (``n_steps``), ``--epochs`` (``n_epochs``), ``--burst`` (``tau``),
``--seed``.
"""

from __future__ import annotations

import argparse

import numpy as np

from eqfree import systems


# -- argument types (argparse turns their ValueError / ArgumentTypeError into a usage error) ----------
def key_value(text: str) -> tuple[str, float | str]:
    """``k=v``: v a number where it reads as one, else a word (e.g. ``gb=gbn2``); the system checks it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        return key.strip(), value.strip()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def numbers(text: str) -> list[float]:
    """Comma-separated numbers: a state, or several CV values."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def grid(text: str) -> np.ndarray:
    """``START:STOP:NUM``, equispaced."""
    try:
        start, stop, num = text.split(":")
        return np.linspace(float(start), float(stop), int(num))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:NUM (e.g. -3.5:3.5:25), got {text!r}") from None


# -- option groups ------------------------------------------------------------------------------------
def common() -> argparse.ArgumentParser:
    """The parent of every subcommand: ``--debug`` (also accepted before the command)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    return parent


def add_system(command, *, required: bool = True, help: str = "the fine system", dt: bool = True) -> None:
    """``--system NAME``, ``--param K=V`` (repeatable) and, with ``dt``, ``--dt``."""
    command.add_argument("--system", required=required, default=None, choices=systems.available(), help=help)
    command.add_argument("--param", action="append", type=key_value, default=[], metavar="K=V",
                         help="override a system parameter (repeatable)")
    if dt:
        command.add_argument("--dt", type=float, default=None, help="fine time step (default: the system's)")


def add_seed(command, *, required: bool = True, help: str = "random seed (same seed, same numbers)") -> None:
    command.add_argument("--seed", type=int, required=required, default=None, help=help)


def add_device(command) -> None:
    command.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")


def add_output(command, *, help: str = "output zarr store") -> None:
    """``--out PATH``, ``--overwrite`` and ``--quiet``."""
    command.add_argument("--out", required=True, help=help)
    command.add_argument("--overwrite", action="store_true", help="replace an existing output of eqfree")
    command.add_argument("--quiet", action="store_true", help="no progress bars")


def add_walkers(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    command.add_argument("--walkers", type=positive_int, required=required, default=default, help=help)


def add_samples(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    command.add_argument("--samples", type=positive_int, required=required, default=default, help=help)


def add_steps(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    command.add_argument("--steps", type=positive_int, required=required, default=default, help=help)


def add_epochs(command, *, help: str, default: int) -> None:
    command.add_argument("--epochs", type=positive_int, default=default, help=help)


def add_burst(command, *, required: bool = True) -> None:
    command.add_argument("--burst", type=float, required=required, default=None, metavar="TAU",
                         help="burst duration tau")


def add_cv(command, *, required: bool = True, help: str = "x1, 0, ... or a saved kernel expansion (folder)") -> None:
    command.add_argument("--cv", required=required, default=None, help=help)


def add_coarse(command) -> None:
    """What every coarse command over a fine system needs: the system, the seed, the CV and the lift."""
    add_system(command)
    add_seed(command)
    add_cv(command)
    add_lift(command)


def add_lift(command) -> None:
    command.add_argument("--lift", default="exact", help="exact | umbrella:kappa=K,steps=N")


def add_grid(command, *, help: str = "CV values") -> None:
    command.add_argument("--grid", type=grid, required=True, metavar="START:STOP:NUM", help=help)


def add_kappa(command, *, help: str = "spring constant", required: bool = True) -> None:
    command.add_argument("--kappa", type=float, required=required, default=None, help=help)


def add_scheduler(command) -> None:
    command.add_argument("--scheduler", default=None, help="dask scheduler address (default: run here)")


def add_discard(command) -> None:
    command.add_argument("--discard", type=float, default=0.0, help="discard saved times t < DISCARD (warm-up)")


def add_data(command, *, help: str, required: bool = True, variable: bool = True) -> None:
    """``--data PATH.zarr`` and, with ``variable``, ``--variable`` and ``--discard``."""
    command.add_argument("--data", required=required, default=None, help=help)
    if variable:
        command.add_argument("--variable", default="x",
                             help="what to use of --data: x (states) or y (observed coordinates)")
        add_discard(command)


def add_training(command, *, batch_size: int | None) -> None:
    """``--batch-size`` and ``--lr`` of a trained model."""
    command.add_argument("--batch-size", type=positive_int, default=batch_size)
    command.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
