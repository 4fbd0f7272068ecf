"""From parsed options to the library's objects: the system, its CV, a lift, the provenance of a run."""

from __future__ import annotations

from pathlib import Path

from eqfree import systems

from ..base import is_saved_estimator
from ..errors import InputError, MissingInputError, OutputExistsError
from ..io.store import is_eqfree_store
from ..lift import UmbrellaSampling
from ..restrict import Coordinates, KernelExpansion, collective_variable

NOT_RECORDED = {"run", "argv", "recipe", "quiet", "overwrite", "debug"}


def check_output(args, *inputs) -> None:
    """Before any computation: refuse an ``--out`` that is one of the command's ``inputs``, and an occupied
    one unless ``--overwrite`` — which replaces only what eqfree wrote (a store or a saved model)."""
    check_path(Path(args.out), overwrite=args.overwrite, inputs=inputs, flag="--out")


def check_path(path: Path, *, overwrite: bool, inputs=(), flag: str) -> None:
    """:func:`check_output` for any output path (``flag`` names its option in messages)."""
    if any(item is not None and Path(item).resolve() == path.resolve() for item in inputs):
        raise OutputExistsError(f"{flag} {path} is also an input of this command: write the result elsewhere")
    if not path.exists():
        return
    if not overwrite:
        raise OutputExistsError(f"{path} exists; choose another path or pass --overwrite")
    if not (is_eqfree_store(path) or is_saved_estimator(path)):
        raise OutputExistsError(f"{path} was not written by eqfree, and --overwrite replaces only eqfree's own "
                                "outputs: choose another path")


def system_of(args):
    """The system of ``--system`` with its ``--param`` overrides."""
    return systems.get(args.system, **dict(args.param))


def dt_of(args, system) -> float:
    """``--dt``, or the system's default step."""
    return system.dt if args.dt is None else args.dt


def restriction(spec: str, dim: int):
    """The Restrict operator of a CV spec, shape (..., 1): a coordinate name/index, or the folder of a saved
    kernel expansion (``KernelExpansion.save``, a learned diffusion-map coordinate)."""
    path = Path(spec)
    if path.is_dir():
        return KernelExpansion.load(spec)
    if path.exists() or path.suffix or len(path.parts) > 1:
        raise MissingInputError(f"No such file or folder: {spec}; a CV is a coordinate (x1, 0, ...) or the folder "
                                "of a saved kernel expansion")
    return Coordinates(spec, dim)


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
