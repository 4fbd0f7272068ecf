"""``eqfree continue``: pseudo-arclength continuation of coarse fixed points in a system parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eqfree import systems

from ..coarse import BurstDrift, continuation
from ..errors import InputError
from ..io import provenance, write_zarr
from ..operators import CoarseTimeStepper
from . import options
from .build import check_output, coarse_operators, command_line, progress, recipe_parameters, system_of

BURST_STEPS = 100  # the default burst: this many fine steps


def add_parsers(commands, parent) -> None:
    """``eqfree continue``: its options on the coarse operators, the parameter range and the branch."""
    command = commands.add_parser(
        "continue", parents=[parent], help="follow coarse fixed points in a system parameter (bifurcation diagram)",
        example="eqfree continue --system averaging_cubic --cv x1 --lift exact --parameter lam --from 1.5 "
                "--to -0.5 \\\n    --z0 1.2 --odd --seed 7 --out build/pitchfork.zarr")
    options.add_coarse(command)
    command.add_argument("--parameter", required=True, help="the system parameter to vary (one of --system's)")
    command.add_argument("--from", dest="start", type=float, required=True, help="the parameter's first value")
    command.add_argument("--to", dest="end", type=float, required=True,
                         help="the parameter's last value: the branch stops when it leaves [from, to]")
    command.add_argument("--z0", type=float, required=True,
                         help="a guess of the fixed point at --from, in the CV's unit")
    command.add_argument("--burst", type=float, default=None, metavar="TAU",
                         help=f"burst duration tau, in the system's time unit (default: {BURST_STEPS} fine steps)")
    options.add_walkers(command, help="lifted states per burst", required=False, default=1000)
    command.add_argument("--odd", action="store_true",
                         help="the system is odd under z -> -z (every CV changes sign with the fine state): "
                              "average the drift over z and -z, so its pitchforks survive the sampling error "
                              "(twice the bursts)")
    command.add_argument("--step", type=float, default=0.1, help="first arclength step in (CV, parameter)")
    command.add_argument("--points", type=options.positive_int, default=200, help="at most this many branch points")
    command.add_argument("--png", default=None, help="bifurcation diagram (default: --out with suffix .png)")
    options.add_output(command)
    command.set_defaults(run=cmd_continue)


def family_of(args):
    """λ -> the coarse time-stepper of ``--system`` with ``--parameter`` = λ (other ``--param`` kept)."""
    fixed = dict(args.param)
    system = system_of(args)
    if args.parameter not in system.params:
        raise InputError(f"{args.system} has no parameter {args.parameter!r}; its parameters: {sorted(system.params)}")

    def family(lam: float) -> CoarseTimeStepper:
        system = systems.get(args.system, **{**fixed, args.parameter: lam})
        dt, restrict, lift = coarse_operators(args, system)
        return CoarseTimeStepper(lift, system.evolver(dt), restrict)

    return family, system


def cmd_continue(args) -> int:
    """Follow the coarse fixed points from ``--z0`` over [``--from``, ``--to``]; write ``--out`` and the diagram."""
    check_output(args)
    family, system = family_of(args)
    dt, _, _ = coarse_operators(args, system)
    tau = BURST_STEPS * dt if args.burst is None else args.burst
    symmetry = -np.eye(len(family(args.start).restrict.names)) if args.odd else None
    drift = BurstDrift(family, tau=tau, n_walkers=args.walkers, symmetry=symmetry)
    branch = continuation(drift, args.z0, args.start, args.end, seed=args.seed, parameter=args.parameter,
                          step=args.step, max_points=args.points, progress=progress(args))
    recipe = recipe_parameters(args, system_params=system.params, dt=dt, tau=tau)
    branch.attrs = {**branch.attrs, **provenance(f"{system.name}: coarse branch in {args.parameter}", recipe,
                                                 command_line(args))}
    write_zarr(branch, args.out, overwrite=args.overwrite)
    png = Path(args.out).with_suffix(".png") if args.png is None else Path(args.png)
    plot_branch(branch, png)
    folds = [p for p in branch.attrs["special_points"] if p["kind"] == "fold"]
    cv = branch.attrs["cv"][0]
    print(f"wrote {args.out} and {png}: {branch.sizes['point']} points, {args.parameter} from "
          f"{float(branch[args.parameter][0]):.4g} to {float(branch[args.parameter][-1]):.4g}, "
          f"{cv} from {float(branch[cv][0]):.4g} to {float(branch[cv][-1]):.4g}; "
          f"{int(branch.fine_steps.sum())} fine steps; stopped: {branch.attrs['stop_reason']}")
    for fold in folds:
        print(f"fold at {args.parameter} = {fold[args.parameter]:.4g} ± {fold[args.parameter + '_stderr']:.2g}, "
              f"{cv} = {fold[cv]:.4g}")
    return 0


def plot_branch(branch, png: Path) -> None:
    """The bifurcation diagram: each CV against the parameter, ± 3 standard errors both ways; stable points
    filled, unstable open; folds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parameter = branch.attrs["parameter"]
    names = branch.attrs["cv"]
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    lam, lam_se = branch[parameter].values, branch[f"{parameter}_stderr"].values
    stable = branch.stable.values.astype(bool)
    for ax, name in zip(axes[0], names):
        z, z_se = branch[name].values, branch[f"{name}_stderr"].values
        ax.plot(lam, z, "-", color="0.6", lw=0.8)
        ax.errorbar(lam, z, xerr=3 * lam_se, yerr=3 * z_se, fmt="none", ecolor="C0", alpha=0.5,
                    label="± 3 standard errors")
        ax.plot(lam[stable], z[stable], "o", color="C0", ms=4, label="stable")
        ax.plot(lam[~stable], z[~stable], "o", mfc="white", color="C3", ms=4, label="unstable")
        for point in branch.attrs["special_points"]:
            ax.plot(point[parameter], point[name], "k*" if point["kind"] == "fold" else "kx", ms=10,
                    label=point["kind"])
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8)
        span = np.ptp(lam) or 1.0
        ax.set(xlabel=parameter, ylabel=name, title=f"coarse branch of {name}",
               xlim=(lam.min() - 0.15 * span, lam.max() + 0.15 * span))
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
