"""The options several commands share, each declared once, and the argument types they parse with.

Every adder takes the subcommand's parser and a ``help`` (what the option means there); the flag
names follow the vocabulary of the library: ``--walkers`` (``n_walkers``), ``--samples``
(``n_samples``), ``--steps`` (``n_steps``), ``--epochs`` (``n_epochs``), ``--burst`` (``tau``),
``--seed``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from eqfree import systems


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default (where it has one to show); the epilog (a worked example)
    keeps its lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or action.required or hidden or action.default == [] or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Every subcommand's parser: :class:`HelpFormatter`, and its ``example`` shown last in ``--help``."""

    def __init__(self, *args, example: str | None = None, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        if example is not None:
            kwargs["epilog"] = "example:\n  " + example.replace("\n", "\n  ")
        super().__init__(*args, **kwargs)


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
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def at_least(low: int):
    """An integer type refusing values below ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {low}, got {text!r}")
        return value
    return parse


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


def device(text: str) -> str:
    """A torch device that exists here: ``cpu``, or ``cuda``/``mps`` where available."""
    try:
        kind = torch.device(text).type
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device: use cpu, cuda, cuda:1, mps") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: CUDA is not available here; use --device cpu")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use --device cpu")
    return text


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
                         help="override a system parameter (repeatable; names and defaults: `eqfree systems`)")
    if dt:
        command.add_argument("--dt", type=float, default=None,
                             help="fine time step, in the system's time unit (ps for alanine_dipeptide; "
                                  "default: the system's, see `eqfree systems`)")


def add_seed(command, *, required: bool = True, help: str = "integer random seed (same seed, same numbers)") -> None:
    """``--seed``: the integer every random draw of the command derives from."""
    command.add_argument("--seed", type=int, required=required, default=None, help=help)


def add_device(command) -> None:
    """``--device``: a torch device that exists here."""
    command.add_argument("--device", type=device, default="cpu", help="torch device (cpu, cuda, cuda:1, mps)")


def add_output(command, *, help: str = "output zarr store", resumes: bool = False) -> None:
    """``--out PATH``, ``--overwrite`` and ``--quiet``."""
    then = "an existing store of the same recipe is resumed" if resumes else "refused if it exists, unless --overwrite"
    command.add_argument("--out", required=True, help=f"{help}; {then}")
    command.add_argument("--overwrite", action="store_true",
                         help="replace an existing output that eqfree wrote (never anything else)")
    command.add_argument("--quiet", action="store_true",
                         help="no progress bars (they show when standard error is a terminal)")


def add_walkers(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    """``--walkers``: parallel fine trajectories (``n_walkers``)."""
    command.add_argument("--walkers", type=positive_int, required=required, default=default, help=help)


def add_samples(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    """``--samples``: independent draws (``n_samples``)."""
    command.add_argument("--samples", type=positive_int, required=required, default=default, help=help)


def add_steps(command, *, help: str, required: bool = True, default: int | None = None) -> None:
    """``--steps``: fine integrator steps (``n_steps``)."""
    command.add_argument("--steps", type=positive_int, required=required, default=default, help=help)


def add_epochs(command, *, help: str, default: int) -> None:
    """``--epochs``: training passes (``n_epochs``)."""
    command.add_argument("--epochs", type=positive_int, default=default, help=help)


def add_burst(command, *, required: bool = True) -> None:
    """``--burst``: the burst length tau, in the system's time unit."""
    command.add_argument("--burst", type=float, required=required, default=None, metavar="TAU",
                         help="burst duration tau, in the system's time unit")


def add_cv(command, *, required: bool = True, help: str = "x1, 0, ... or a saved kernel expansion (folder)") -> None:
    """``--cv``: a coordinate or the folder of a saved kernel expansion."""
    command.add_argument("--cv", required=required, default=None, help=help)


def add_coarse(command) -> None:
    """What every coarse command over a fine system needs: the system, the seed, the CV and the lift."""
    add_system(command)
    add_seed(command)
    add_cv(command)
    add_lift(command)


def add_lift(command) -> None:
    """``--lift``: ``exact`` or ``umbrella:kappa=K,steps=N``."""
    command.add_argument("--lift", default="exact",
                         help="exact (the system's known conditional law) or umbrella:kappa=K,steps=N "
                              "(K in energy/CV², N fine steps)")


def add_grid(command, *, help: str = "CV values") -> None:
    """``--grid START:STOP:NUM``: equispaced CV values (a negative START needs no ``=``)."""
    command.add_argument("--grid", type=grid, required=True, metavar="START:STOP:NUM",
                         help=f"{help}: NUM equispaced values from START to STOP, in the CV's unit")


def add_grids(command) -> None:
    """``--grid START:STOP:NUM``, once per CV in the order of ``--cv``: equispaced values of each CV."""
    command.add_argument("--grid", type=grid, action="append", required=True, metavar="START:STOP:NUM",
                         help="CV values: NUM equispaced values from START to STOP, in the CV's unit; one --grid per "
                              "CV, in the order of --cv (the closure's grid is their product)")


def add_kappa(command, *, help: str = "spring constant", required: bool = True) -> None:
    """``--kappa``: a spring constant, in energy per CV unit squared."""
    command.add_argument("--kappa", type=float, required=required, default=None,
                         help=f"{help}, in energy per CV unit squared (kT for the SDE systems, kJ/mol/rad² for "
                              "alanine_dipeptide)")


def add_scheduler(command) -> None:
    """``--scheduler``: the address of a dask scheduler (default: run here)."""
    command.add_argument("--scheduler", default=None, help="dask scheduler address (default: run here)")


def add_discard(command) -> None:
    """``--discard``: the warm-up to drop, in the system's time unit."""
    command.add_argument("--discard", type=float, default=0.0,
                         help="discard saved times t < DISCARD (warm-up), in the system's time unit")


def add_data(command, *, help: str, required: bool = True, variable: bool = True) -> None:
    """``--data PATH.zarr`` and, with ``variable``, ``--variable`` and ``--discard``."""
    command.add_argument("--data", required=required, default=None, help=help)
    if variable:
        command.add_argument("--variable", default="x",
                             help="what to use of --data: x (states) or y (observed coordinates)")
        add_discard(command)


def add_training(command, *, batch_size: int | None) -> None:
    """``--batch-size`` and ``--lr`` of a trained model."""
    command.add_argument("--batch-size", type=positive_int, default=batch_size,
                         help="samples per training step" + ("" if batch_size else " (default: the model's)"))
    command.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
