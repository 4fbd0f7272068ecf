"""``eqfree closure estimate`` and ``eqfree closure integrate``: averaged-drift closures on a CV grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from eqfree import systems

from ..errors import InputError
from ..io import parameters_of, provenance, write_zarr
from ..parallel import executor_for
from ..restrict import Coordinates
from ..seeding import child
from . import options
from .build import check_output, coarse_operators, command_line, cv_of, lift_of, recipe_parameters, system_of


def add_parsers(commands, parent) -> None:
    closure = commands.add_parser("closure", parents=[parent],
                                  help="averaged-drift closures: estimate on a grid, integrate")
    closure_commands = closure.add_subparsers(dest="closure_command", required=True)

    estimate = closure_commands.add_parser("estimate", parents=[parent],
                                           help="B(z) (and D(z)) on a grid of CV values, resumable")
    options.add_coarse(estimate)
    options.add_grid(estimate)
    estimate.add_argument("--estimator", choices=("bursts", "conditional"), default="bursts")
    options.add_burst(estimate, required=False)
    options.add_walkers(estimate, help="lifted states per grid point")
    options.add_scheduler(estimate)
    options.add_output(estimate)
    estimate.set_defaults(run=cmd_closure_estimate)

    integrate = closure_commands.add_parser(
        "integrate", parents=[parent], help="solve the closed ODE; optionally compare with direct simulation")
    integrate.add_argument("--closure", required=True, help="store written by `eqfree closure estimate`")
    integrate.add_argument("--z0", type=float, required=True)
    integrate.add_argument("--t-end", type=float, required=True)
    integrate.add_argument("--points", type=options.positive_int, default=101, help="output times, equispaced from 0")
    integrate.add_argument("--compare", type=options.positive_int, default=0, metavar="WALKERS",
                           help="also run this many direct fine simulations from z0 and print a table")
    options.add_seed(integrate, required=False, help="seed of the direct simulations (with --compare)")
    integrate.add_argument("--png", default=None, help="figure of the closure and the comparison")
    options.add_output(integrate)
    integrate.set_defaults(run=cmd_closure_integrate)


def estimator_of(args, system):
    """The closure estimator of ``--estimator``: bursts of the fine dynamics, or the conditional average
    of the slow drift."""
    from eqfree.closures import BurstEstimator, ConditionalAverageEstimator

    dt, restrict, lift = coarse_operators(args, system)
    if args.estimator == "bursts":
        if args.burst is None:
            raise InputError("the bursts estimator needs the burst duration: pass --burst TAU")
        return BurstEstimator(lift, system.evolver(dt), restrict, tau=args.burst, n_walkers=args.walkers)
    if not isinstance(restrict, Coordinates):
        raise InputError("the conditional-average estimator needs the slow drift of a coordinate CV; "
                         "use --estimator bursts")
    index = restrict.indices[0]
    slow_drift = lambda x: system.drift(torch.as_tensor(x), 0.0)[:, index].numpy()
    return ConditionalAverageEstimator(lift, slow_drift, n_samples=args.walkers)


def cmd_closure_estimate(args) -> int:
    from eqfree.closures import estimate_closure

    system = system_of(args)
    estimator = estimator_of(args, system)
    with executor_for(args.scheduler) as executor:
        dataset = estimate_closure(
            estimator, args.grid, seed=args.seed, store=args.out, overwrite=args.overwrite, executor=executor,
            progress=not args.quiet, command=command_line(args),
            metadata=recipe_parameters(args, system_params=system.params) | {"scheduler": None, "out": None})
    done = int(dataset.done.sum())
    print(f"{args.out}: {done}/{dataset.sizes['cv']} grid points done; drift in "
          f"[{float(dataset.drift.min()):.4g}, {float(dataset.drift.max()):.4g}], "
          f"largest standard error {float(dataset.drift_stderr.max()):.3g}")
    return 0


def cmd_closure_integrate(args) -> int:
    from eqfree.closures import Closure, integrate

    check_output(args, args.closure)
    closure = Closure.from_zarr(args.closure)
    times = np.linspace(0.0, args.t_end, args.points)
    path = integrate(closure, args.z0, (0.0, args.t_end), t_eval=times)
    dataset = xr.Dataset({"z": path})
    if args.compare:
        dataset["direct_mean"], dataset["direct_stderr"] = direct_simulation(closure, args, times)
    dataset.attrs = provenance("closed ODE dz/dt = B(z) of a closure", recipe_parameters(args), command_line(args))
    write_zarr(dataset, args.out, overwrite=args.overwrite)
    if args.compare:
        print_comparison(dataset)
        if args.png:
            plot_comparison(dataset, closure, args.png)
    print(f"wrote {args.out}: z(t) on {len(times)} times, z({args.t_end:g}) = {float(path[-1]):.5g}")
    return 0


def direct_simulation(closure, args, times):
    """Mean and standard error of the slow coordinate over ``args.compare`` direct fine runs from z0."""
    recipe = parameters_of(closure.dataset.attrs)
    metadata = recipe.get("metadata", recipe)
    missing = {"system", "cv", "lift"} - set(metadata)
    if missing:
        raise InputError(f"{args.closure} does not record its {sorted(missing)} (it was not written by "
                         "`eqfree closure estimate`): cannot rebuild the direct simulation; drop --compare")
    if args.seed is None:
        raise InputError("--compare runs direct simulations: pass their --seed")
    system = systems.get(metadata["system"], **metadata.get("system_params", {}))
    dt = metadata.get("dt") or system.dt
    cv = cv_of(metadata["cv"], system)
    lift = lift_of(metadata["lift"], system, cv, dt)
    save_every = max(1, round((times[1] - times[0]) / dt))
    n_steps = round(args.t_end / dt)
    if not np.isclose(save_every * dt * (len(times) - 1), args.t_end):
        raise InputError(f"--points {len(times)} must split --t-end {args.t_end} into multiples of dt = {dt}")
    x0 = lift(np.array([args.z0]), args.compare, seed=child(args.seed, 0))
    run = system.simulate(args.compare, n_steps, seed=child(args.seed, 1), dt=dt, x0=x0, save_every=save_every,
                          progress=not args.quiet)
    slow = cv(run.values)
    mean = xr.DataArray(slow.mean(axis=1), dims="time", attrs={"long_name": "direct fine simulation, ensemble mean"})
    stderr = xr.DataArray(slow.std(axis=1, ddof=1) / np.sqrt(args.compare), dims="time",
                          attrs={"long_name": "standard error of the ensemble mean"})
    return mean, stderr


def print_comparison(dataset) -> None:
    print(f"{'t':>8} {'closure':>10} {'direct':>10} {'± se':>8} {'diff/se':>8}")
    for i in np.linspace(0, dataset.sizes["time"] - 1, min(11, dataset.sizes["time"])).astype(int):
        row = dataset.isel(time=i)
        se = float(row.direct_stderr)
        gap = (float(row.z) - float(row.direct_mean)) / se if se > 0 else 0.0
        print(f"{float(row.time):8.3f} {float(row.z):10.5f} {float(row.direct_mean):10.5f} {se:8.5f} {gap:+8.2f}")


def plot_comparison(dataset, closure, png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    data = closure.dataset
    left.errorbar(data.cv, data.drift, yerr=3 * data.drift_stderr, fmt=".", ms=3, label="estimated B(z) ± 3 se")
    left.set(xlabel="z", ylabel="B(z)", title="averaged drift across the grid")
    left.legend()
    t = dataset.time
    right.fill_between(t, dataset.direct_mean - 3 * dataset.direct_stderr,
                       dataset.direct_mean + 3 * dataset.direct_stderr,
                       alpha=0.3, label="direct fine simulation ± 3 se")
    right.plot(t, dataset.z, "k", label="closed ODE dz/dt = B(z)")
    right.set(xlabel="t", ylabel="z", title="closure against direct simulation")
    right.legend()
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"figure written to {png}")
