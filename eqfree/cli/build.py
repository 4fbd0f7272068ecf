"""From parsed options to the library's objects: the system, its CV, a lift, the provenance of a run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eqfree import systems

from .. import io
from ..base import is_saved_estimator
from ..errors import InputError, MissingInputError, OutputExistsError
from ..io import is_eqfree_store
from ..lift import UmbrellaSampling
from ..restrict import Coordinates, KernelExpansion, collective_variable

NOT_RECORDED = {"run", "argv", "recipe", "quiet", "overwrite", "debug", "held"}


def check_output(args, *inputs, model: bool = False) -> None:
    """Before any computation: check ``--out`` (:func:`eqfree.io.check_output`: not one of the command's
    ``inputs``, a writable place, occupied only with ``--overwrite`` and then only by eqfree's own store, or
    saved model with ``model``), and hold its lock until the command ends."""
    check_path(args, args.out, inputs=inputs, flag="--out", model=model)


def check_path(args, path, *, inputs=(), flag: str, model: bool = False, resume: bool = False) -> None:
    """:func:`check_output` for any output option (``flag`` names it in messages)."""
    replaceable = is_saved_estimator if model else is_eqfree_store
    try:
        path = io.check_output(path, overwrite=args.overwrite, inputs=inputs, resume=resume, replaceable=replaceable,
                               kind="saved model" if model else "zarr store", flag="--overwrite")
    except OutputExistsError as error:
        raise OutputExistsError(f"{flag}: {error}") from None
    args.held.enter_context(io.output_lock(path))


def memory_check(n_bytes: float, what: str, reduce: str) -> None:
    """Refuse a request whose arrays (``n_bytes``) would not fit in the memory available now."""
    available = available_memory()
    if n_bytes > available:
        raise InputError(f"{what} needs about {n_bytes / 2**30:.3g} GiB of memory and {available / 2**30:.3g} GiB "
                         f"are available: {reduce}")


def available_memory() -> float:
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo; the physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def progress(args) -> bool:
    """Progress bars: on when standard error is a terminal, off with ``--quiet``."""
    return not args.quiet and sys.stderr.isatty()


def system_of(args):
    """The system of ``--system`` with its ``--param`` overrides."""
    return systems.get(args.system, **dict(args.param))


def dt_of(args, system) -> float:
    """``--dt``, or the system's default step."""
    return system.dt if args.dt is None else args.dt


def restriction(spec: str, dim: int):
    """The Restrict operator of a CV spec, shape (..., n): coordinate names/indices (comma-separated for several),
    or the folder of a saved kernel expansion (``KernelExpansion.save``, a learned diffusion-map coordinate)."""
    path = Path(spec)
    if path.is_dir():
        return KernelExpansion.load(spec)
    if path.exists() or path.suffix or len(path.parts) > 1:
        raise MissingInputError(f"No such file or folder: {spec}; a CV is a coordinate (x1, 0, ...) or the folder "
                                "of a saved kernel expansion")
    return Coordinates(spec.split(","), dim)


def cv_of(spec: str, system, period: float | None = None):
    """The CV of a spec, for a bias."""
    return collective_variable(restriction(spec, system.dim), period=period)


def lift_of(spec: str, system, cv, dt: float):
    """``exact`` (the system's known conditional law) or ``umbrella:kappa=K,steps=N``."""
    name, _, options = spec.partition(":")
    if name == "exact":
        if options:
            raise InputError("the exact lift takes no options")
        return system.exact_lift(dt)
    if name == "umbrella":
        try:
            values = dict(item.split("=") for item in options.split(",")) if options else {}
            kappa, steps = float(values.pop("kappa")), int(values.pop("steps"))
        except (KeyError, ValueError):
            raise InputError(f"lift {spec!r}: write umbrella:kappa=K,steps=N") from None
        if values:
            raise InputError(f"lift {spec!r}: unknown option(s) {sorted(values)}; umbrella takes kappa and steps")
        return UmbrellaSampling(system.evolver(dt), cv, kappa, n_steps=steps, initial=system.x0)
    raise InputError(f"lift {spec!r} not understood: use 'exact' or 'umbrella:kappa=K,steps=N'")


def coarse_operators(args, system):
    """The fine step, the restriction and the lift given by ``--dt``, ``--cv`` and ``--lift``."""
    dt = dt_of(args, system)
    restrict = restriction(args.cv, system.dim)
    return dt, restrict, lift_of(args.lift, system, collective_variable(restrict), dt)


def recipe_parameters(args, **extra) -> dict:
    """The choices of a command, for the provenance attributes."""
    chosen = {k: v for k, v in vars(args).items() if k not in NOT_RECORDED}
    return {**chosen, **extra, **({"recipe": args.recipe} if args.recipe else {})}


def command_line(args) -> list[str]:
    """The command as typed, for the provenance attributes."""
    return ["eqfree", *args.argv]
