"""``eqfree project``: coarse projective integration of a system's CV."""

from __future__ import annotations

from ..coarse import WalkerBursts, projective_integrate
from ..io import provenance, write_zarr
from ..operators import CoarseTimeStepper
from . import options
from .build import check_output, coarse_operators, command_line, recipe_parameters, system_of


def add_parsers(commands, parent) -> None:
    """``project``."""
    project = commands.add_parser(
        "project", parents=[parent], help="coarse projective integration of a system's CV from z0",
        example="eqfree project --system averaging_cubic --cv x1 --z0 1 --t-end 1 --macro-step 0.2 --burst 1e-4 \\\n"
                "    --walkers 1000 --realizations 10 --method rk4 --seed 1 --out build/pi.zarr")
    options.add_coarse(project)
    project.add_argument("--z0", type=float, required=True, help="initial CV value, in the CV's unit")
    project.add_argument("--t-end", type=float, required=True, help="final time, in the system's time unit")
    project.add_argument("--macro-step", type=float, required=True,
                         help="projective step, in the system's time unit")
    options.add_burst(project)
    project.add_argument("--heal", type=float, default=0.0,
                         help="healing time before the fitted tail, in the system's time unit")
    options.add_walkers(project, help="lifted states per burst")
    project.add_argument("--realizations", type=options.positive_int, default=2,
                         help="independent runs (for the error)")
    project.add_argument("--method", choices=("euler", "rk2", "rk4"), default="rk2",
                         help="projective forward Euler, or projective Runge-Kutta of order 2 or 4")
    options.add_output(project)
    project.set_defaults(run=cmd_project)


def cmd_project(args) -> int:
    """Coarse projective integration from ``--z0`` to ``--t-end``, written to ``--out``."""
    check_output(args)
    system = system_of(args)
    dt, restrict, lift = coarse_operators(args, system)
    stepper = CoarseTimeStepper(lift, system.evolver(dt), restrict)
    bursts = WalkerBursts(stepper, args.burst, args.walkers, args.seed, t_heal=args.heal)
    result = projective_integrate(bursts, args.z0, args.t_end, args.macro_step, method=args.method,
                                  realizations=args.realizations)
    result.attrs = {**result.attrs, **provenance(f"{system.name}: coarse projective integration",
                                                 recipe_parameters(args, system_params=system.params, dt=dt),
                                                 command_line(args))}
    write_zarr(result, args.out, overwrite=args.overwrite)
    steps = int(result.fine_steps[-1])
    print(f"wrote {args.out}: z({args.t_end:g}) = {float(result.z[-1, 0]):.5g} ± {float(result.z_stderr[-1, 0]):.2g} "
          f"after {result.sizes['time'] - 1} macro steps, {steps} fine steps per walker "
          f"({steps * args.walkers * args.realizations} in all; "
          f"a direct run takes {round(args.t_end / dt)} per walker)")
    return 0
