"""``eqfree closure estimate``, ``integrate`` and ``kinetics``: averaged-drift closures on a CV grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from eqfree import systems

from ..errors import InputError
from ..io import parameters_of, provenance, write_zarr
from ..operators import StateLift
from ..parallel import executor_for
from ..restrict import Coordinates, collective_variable
from ..seeding import child
from . import options
from .build import (
    check_output,
    check_path,
    command_line,
    dt_of,
    lift_of,
    progress,
    recipe_parameters,
    restriction,
    system_of,
)

#: the options of `closure estimate` that change its numbers, compared when a store is resumed
RESULT_OPTIONS = ("cv", "lift", "estimator", "burst", "walkers")


def add_parsers(commands, parent) -> None:
    """``closure estimate``, ``closure integrate`` and ``closure kinetics``."""
    closure = commands.add_parser("closure", parents=[parent],
                                  help="averaged-drift closures: estimate on a grid, integrate, kinetics",
                                  example="eqfree closure estimate --help; eqfree closure integrate --help")
    closure_commands = closure.add_subparsers(dest="closure_command", required=True)

    estimate = closure_commands.add_parser(
        "estimate", parents=[parent], help="B(z) (and D(z)) on a grid of CV values, resumable",
        example="eqfree closure estimate --system averaging_cubic --cv x1 --grid -1.5:1.5:41 --burst 0.002 \\\n"
                "    --walkers 4000 --seed 1 --out build/closure.zarr   # rerun: resumes\n"
                "eqfree closure estimate --system double_well --cv x1,x2 --grid=-2.5:2.5:11 --grid=-1.5:1.5:7 \\\n"
                "    --burst 0.01 --dt 1e-3 --walkers 4000 --seed 1 --out build/well2d.zarr --png build/well2d.png")
    options.add_coarse(estimate)
    options.add_grids(estimate)
    estimate.add_argument("--estimator", choices=("bursts", "conditional"), default="bursts",
                          help="bursts of the fine dynamics, or the conditional average of a coordinate's drift")
    options.add_burst(estimate, required=False)
    options.add_walkers(estimate, help="lifted states per grid point")
    options.add_scheduler(estimate)
    options.add_output(estimate, resumes=True)
    estimate.add_argument("--png", default=None, help="figure of the closure: B and D with 3 se (one CV), the drift's "
                                                      "arrows over a heat map of tr D (two CVs)")
    estimate.set_defaults(run=cmd_closure_estimate)

    integrate = closure_commands.add_parser(
        "integrate", parents=[parent], help="solve the closed ODE; optionally compare with direct simulation",
        example="eqfree closure integrate --closure build/closure.zarr --z0 1 --t-end 1 --compare 1000 --seed 2 \\\n"
                "    --out build/path.zarr")
    integrate.add_argument("--closure", required=True, help="store written by `eqfree closure estimate`")
    integrate.add_argument("--z0", type=options.numbers, required=True,
                           help="initial point: one value per CV, comma-separated, in the CVs' unit")
    integrate.add_argument("--t-end", type=float, required=True, help="final time, in the system's time unit")
    integrate.add_argument("--points", type=options.at_least(2), default=101,
                           help="output times, equispaced from 0 to --t-end")
    integrate.add_argument("--compare", type=options.positive_int, default=0, metavar="WALKERS",
                           help="also run this many direct fine simulations from z0 and print a table")
    options.add_seed(integrate, required=False,
                     help="seed of the closures drawn, the closed SDE's paths and the direct simulations")
    integrate.add_argument("--png", default=None, help="figure of the closure and the comparison (one CV, with "
                                                       "--compare), or of the mean path over the closure (two CVs)")
    options.add_output(integrate)
    integrate.set_defaults(run=cmd_closure_integrate)

    kinetics = closure_commands.add_parser(
        "kinetics", parents=[parent], help="mean first-passage time and rate of the closed SDE, with standard errors",
        example="eqfree closure kinetics --closure build/closure.zarr --from -2.5 --to 0.5:3.5 --json")
    kinetics.add_argument("--closure", required=True, help="store written by `eqfree closure estimate` (with bursts)")
    kinetics.add_argument("--from", dest="start", required=True, metavar="POINT|REGION",
                          help="start: a point (comma-separated coordinates, one per CV) or a region lo:hi per CV "
                               "(the MFPT averaged over the stationary density in it)")
    kinetics.add_argument("--to", dest="target", required=True, metavar="REGION",
                          help="target region: lo:hi per CV, comma-separated, in the CVs' units")
    kinetics.add_argument("--samples", type=options.at_least(2), default=64,
                          help="closures drawn from the standard errors for the standard errors")
    options.add_seed(kinetics, required=False, help="seed of the closures drawn (default 0)")
    kinetics.add_argument("--json", action="store_true", help="print a JSON object (mfpt, mfpt_stderr, rate, ...)")
    kinetics.set_defaults(run=cmd_closure_kinetics)


def closure_lift(spec: str, system, restrict, dt: float):
    """``--lift`` for a closure's CVs: with one CV as everywhere (:func:`~eqfree.cli.build.lift_of`); with several,
    ``exact`` is the point itself where they are the system's whole state, else the system's exact lift where they
    are its slow coordinates."""
    names = list(restrict.names)
    if len(names) == 1:
        return lift_of(spec, system, collective_variable(restrict), dt)
    if spec != "exact":
        raise InputError(f"--lift {spec}: several CVs ({', '.join(names)}) are lifted by --lift exact only")
    if isinstance(restrict, Coordinates) and sorted(restrict.indices) == list(range(system.dim)):
        return StateLift(tuple(restrict.indices))
    if tuple(names) == tuple(system.slow):
        return system.exact_lift(dt)
    raise InputError(f"--lift exact with CVs {', '.join(names)}: {system.name}'s exact lift is known given its slow "
                     f"coordinates {', '.join(system.slow)}, or the CVs must be its whole state "
                     f"({', '.join(system.coords)})")


def estimator_of(args, system):
    """The closure estimator of ``--estimator``: bursts of the fine dynamics, or the conditional average
    of the slow drift."""
    from eqfree.closures import BurstEstimator, ConditionalAverageEstimator

    dt = dt_of(args, system)
    restrict = restriction(args.cv, system.dim)
    if len(args.grid) != len(restrict.names):
        raise InputError(f"--cv names {len(restrict.names)} CV(s) ({', '.join(restrict.names)}) but {len(args.grid)} "
                         "--grid were given: pass one --grid per CV, in the order of --cv")
    lift = closure_lift(args.lift, system, restrict, dt)
    if args.estimator == "bursts":
        if args.burst is None:
            raise InputError("the bursts estimator needs the burst duration: pass --burst TAU")
        return BurstEstimator(lift, system.evolver(dt), restrict, tau=args.burst, n_walkers=args.walkers)
    if not isinstance(restrict, Coordinates):
        raise InputError("the conditional-average estimator needs the slow drift of a coordinate CV; "
                         "use --estimator bursts")
    index = restrict.indices[0] if len(restrict.indices) == 1 else restrict.indices
    slow_drift = lambda x: system.drift(torch.as_tensor(x), 0.0)[:, index].numpy()
    return ConditionalAverageEstimator(lift, slow_drift, n_samples=args.walkers, names=restrict.names)


def cmd_closure_estimate(args) -> int:
    """Estimate the closure on the grid into ``--out``, resuming a store of the same recipe."""
    from eqfree.closures import estimate_closure

    check_path(args, args.out, flag="--out", resume=True)
    if args.png and len(args.grid) > 2:
        raise InputError("--png draws closures of one or two CVs; drop it for three")
    system = system_of(args)
    estimator = estimator_of(args, system)
    # resume compares what changes the numbers (the grid, the seed and the estimator's recipe are added to it)
    metadata = {"system": system.name, "system_params": system.params, "dt": dt_of(args, system),
                **{name: getattr(args, name) for name in RESULT_OPTIONS}}
    with executor_for(args.scheduler) as executor:
        dataset = estimate_closure(
            estimator, args.grid, seed=args.seed, store=args.out, overwrite=args.overwrite, executor=executor,
            progress=progress(args), command=command_line(args), metadata=metadata,
            attrs={"eqfree_recipe": args.recipe} if args.recipe else None)
    done = dataset.done.values
    print(f"{args.out}: {int(done.sum())}/{done.size} grid points done; drift in "
          f"[{float(dataset.drift.min()):.4g}, {float(dataset.drift.max()):.4g}], "
          f"largest standard error {float(dataset.drift_stderr.max()):.3g}")
    if args.png:
        plot_closure(dataset, args.png)
    return 0


def cmd_closure_integrate(args) -> int:
    """Integrate the closure from ``--z0``; with ``--compare``, against direct simulation."""
    from eqfree.closures import Closure, integrate, mean_path

    check_output(args, args.closure)
    if args.seed is None:
        raise InputError("closure integrate draws closures from their standard errors and paths of the closed SDE: "
                         "pass --seed")
    closure = Closure.from_zarr(args.closure)
    if len(args.z0) != closure.ndim:
        raise InputError(f"--z0 gives {len(args.z0)} coordinate(s) but the closure has {closure.ndim} CV(s) "
                         f"({', '.join(closure.names)}): pass one value per CV, comma-separated")
    if args.png and closure.ndim > 2:
        raise InputError("--png draws closures of one or two CVs; drop it for three")
    times = np.linspace(0.0, args.t_end, args.points)
    dataset = mean_path(closure, args.z0, (0.0, args.t_end), t_eval=times, seed=child(args.seed, 2),
                        progress=progress(args))
    ode = integrate(closure, args.z0, (0.0, args.t_end), t_eval=times)
    dataset["ode"] = (ode.dims, ode.values, {"long_name": "closed ODE dz/dt = B(z)", "units": ode.attrs["units"]})
    if args.compare:
        dataset["direct_mean"], dataset["direct_stderr"] = direct_simulation(closure, args, times)
        combined = np.sqrt(dataset.closure_sd**2 + dataset.z_stderr**2 + dataset.direct_stderr**2)
        dataset["gap"] = ((dataset.z - dataset.direct_mean) / combined.where(combined > 0)).fillna(0.0)
        dataset["gap"].attrs = {"long_name": "(mean path - direct mean) / combined standard error", "units": "1"}
        k = family_bound(dataset)
        dataset["band"] = k * combined
        dataset["band"].attrs = {"long_name": "half-width of the simultaneous 99 % band of the direct mean about the "
                                              "mean path (Bonferroni over the saved times and the CVs)",
                                 "units": dataset.z.attrs.get("units", "1"), "standard_errors": k}
    dataset.attrs = provenance("mean path of a closure's SDE with its error band", recipe_parameters(args),
                               command_line(args))
    write_zarr(dataset, args.out, overwrite=args.overwrite)
    if args.compare:
        for name in closure.names if closure.ndim > 1 else [None]:
            if name is not None:
                print(f"{name}:")
            print_comparison(dataset if name is None else dataset.sel(component=name))
    if args.png and closure.ndim == 1 and args.compare:
        plot_comparison(dataset, closure, args.png)
    elif args.png and closure.ndim == 2:
        plot_closure(closure.dataset, args.png, path=dataset)
    end = dataset.isel(time=-1)
    point = ", ".join(f"{v:.5g} ± {c:.2g} ± {p:.2g}" for v, c, p in
                      zip(*(np.atleast_1d(end[name].values) for name in ("z", "closure_sd", "path_sd")), strict=True))
    print(f"wrote {args.out}: mean path on {len(times)} times, z({args.t_end:g}) = ({point}) "
          "(value ± closure sd ± single paths' sd)")
    return 0


def cmd_closure_kinetics(args) -> int:
    """Mean first-passage time from ``--from`` into ``--to`` and the rate, with standard errors."""
    import json
    import sys

    from eqfree.closures import Box, Closure, parse_point, passage

    closure = Closure.from_zarr(args.closure)
    start = Box.parse(args.start) if ":" in args.start else parse_point(args.start)
    result = passage(closure, start, Box.parse(args.target), seed=0 if args.seed is None else args.seed,
                     n_samples=args.samples, progress=sys.stderr.isatty() and not args.json)
    result = {"cvs": closure.names, "from": args.start, "to": args.target, **result}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"mean first-passage time {args.start} -> {args.target}: {result['mfpt']:.5g} "
              f"± {result['mfpt_stderr']:.2g}; rate {result['rate']:.5g} ± {result['rate_stderr']:.2g} "
              f"(standard errors from {args.samples} closures drawn)")
    return 0


def direct_simulation(closure, args, times):
    """Mean and standard error of the CVs over ``args.compare`` direct fine runs from z0 (dims ``time``, and
    ``component`` with several CVs)."""
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
    restrict = restriction(metadata["cv"], system.dim)
    lift = closure_lift(metadata["lift"], system, restrict, dt)
    save_every = max(1, round((times[1] - times[0]) / dt))
    n_steps = round(args.t_end / dt)
    if not np.isclose(save_every * dt * (len(times) - 1), args.t_end):
        raise InputError(f"--points {len(times)} must split --t-end {args.t_end} into multiples of dt = {dt}")
    x0 = lift(np.array(args.z0), args.compare, seed=child(args.seed, 0))
    run = system.simulate(args.compare, n_steps, seed=child(args.seed, 1), dt=dt, x0=x0, save_every=save_every,
                          progress=progress(args))
    slow = np.asarray(restrict(run.values), dtype=float)  # (time, walker, cv)
    dims, coords = (("time", "component"), {"component": closure.names}) if closure.ndim > 1 else (("time",), {})
    if closure.ndim == 1:
        slow = slow[..., 0]
    mean = xr.DataArray(slow.mean(axis=1), dims=dims, coords=coords,
                        attrs={"long_name": "direct fine simulation, ensemble mean"})
    stderr = xr.DataArray(slow.std(axis=1, ddof=1) / np.sqrt(args.compare), dims=dims, coords=coords,
                          attrs={"long_name": "standard error of the ensemble mean"})
    return mean, stderr


def plot_closure(dataset, png, path=None) -> None:
    """A closure as one figure (matplotlib, Agg): one CV, B and D across the grid with ± 3 standard errors; two
    CVs, the drift's arrows over a heat map of tr D (of |B| without a diffusion), points not done left blank,
    with the mean path of ``path`` (a :func:`~eqfree.closures.mean_path` dataset) and its closed ODE on top. A
    burst estimate is drawn debiased (as :class:`~eqfree.closures.Closure` reads it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eqfree.closures import debiased

    data = debiased(dataset)
    names = list(data["done"].dims)
    done = data["done"].values
    if len(names) == 1:
        z = data[names[0]].values
        shown = [name for name in ("drift", "diffusion") if name in data]
        fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 4), squeeze=False)
        for ax, name in zip(axes[0], shown, strict=True):
            values = data[name].values.reshape(z.size)
            stderr = data[f"{name}_stderr"].values.reshape(z.size)
            ax.errorbar(z[done], values[done], yerr=3 * stderr[done], fmt=".", ms=3, label="estimate ± 3 se")
            ax.set(xlabel=names[0], ylabel=name, title=data[name].attrs.get("long_name", name))
            ax.legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(7, 5))
        first, second = (data[name].values for name in names)
        drift = np.where(done[..., None], data["drift"].values, np.nan)
        if "diffusion" in data:
            heat, label = np.trace(np.where(done[..., None, None], data["diffusion"].values, np.nan), axis1=-2,
                                   axis2=-1), "tr D"
        else:
            heat, label = np.hypot(drift[..., 0], drift[..., 1]), "|B|"
        image = ax.pcolormesh(first, second, heat.T, shading="nearest", cmap="viridis")
        fig.colorbar(image, ax=ax, label=label)
        u, v = np.meshgrid(first, second, indexing="ij")
        ax.quiver(u, v, drift[..., 0], drift[..., 1], color="white", angles="xy", label="drift B")
        if path is not None:
            ax.plot(path.z.values[:, 0], path.z.values[:, 1], "r", lw=1.5, label="closed SDE, mean path")
            ax.plot(path.ode.values[:, 0], path.ode.values[:, 1], "k--", lw=1, label="closed ODE")
        ax.set(xlabel=names[0], ylabel=names[1], title=f"closure: drift over {label}")
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"figure written to {png}")


def print_comparison(dataset) -> None:
    """The mean path against the direct mean, the gap in units of the combined standard error
    √(closure_sd² + z_stderr² + direct_stderr²) at each saved time (11 rows shown), and whether the direct mean
    stays in the simultaneous band ± k·(combined standard error) at every time, k = :func:`family_bound`."""
    print(f"{'t':>8} {'closure':>10} {'± sd':>8} {'direct':>10} {'± se':>8} {'diff/se':>8}")
    for i in np.linspace(0, dataset.sizes["time"] - 1, min(11, dataset.sizes["time"])).astype(int):
        row = dataset.isel(time=i)
        print(f"{float(row.time):8.3f} {float(row.z):10.5f} {float(row.closure_sd):8.5f} "
              f"{float(row.direct_mean):10.5f} {float(row.direct_stderr):8.5f} {float(row.gap):+8.2f}")
    worst = int(np.argmax(np.abs(dataset.gap.values)))
    inside = int((np.abs(dataset.z - dataset.direct_mean) <= dataset.band).sum())
    band = dataset.band.values[1:]
    print(f"direct mean inside the simultaneous 99 % band at {inside} of {dataset.sizes['time']} times "
          f"(band half-width {band.min():.2g} to {band.max():.2g}: {dataset.band.attrs['standard_errors']:.2f} "
          f"combined standard errors); largest |gap| {abs(float(dataset.gap[worst])):.2f} at "
          f"t = {float(dataset.time[worst]):g}")


def family_bound(dataset, level: float = 0.01) -> float:
    """|gap| that every CV at every saved time after the first stays within with probability ≥ 1 − level
    (Bonferroni over the (times − 1) × CVs gaps)."""
    from scipy.stats import norm

    count = max(dataset.sizes["time"] - 1, 1) * dataset.sizes.get("component", 1)
    return float(norm.isf(level / (2 * count)))


def plot_comparison(dataset, closure, png) -> None:
    """The closure across the grid and the closed path against direct simulation, as a figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    data = closure.dataset.squeeze("component", drop=True)
    left.errorbar(data[closure.names[0]], data.drift, yerr=3 * data.drift_stderr, fmt=".", ms=3,
                  label="estimated B(z) ± 3 se")
    left.set(xlabel="z", ylabel="B(z)", title="averaged drift across the grid")
    left.legend()
    t, z = dataset.time, dataset.z
    middle.fill_between(t, z - dataset.path_sd, z + dataset.path_sd, color="tab:blue", alpha=0.15,
                        label="single paths of the closed SDE ± 1 sd")
    middle.fill_between(t, z - dataset.band, z + dataset.band, color="tab:blue", alpha=0.5,
                        label=f"simultaneous 99 % band ({dataset.band.attrs['standard_errors']:.2f} combined se)")
    middle.plot(t, z, "k", lw=1, label="closed SDE, mean path")
    middle.plot(t[::5], dataset.direct_mean[::5], ".", ms=4, color="tab:orange", label="direct fine simulation, mean")
    middle.set(xlabel="t", ylabel="z", title="closure against direct simulation")
    middle.legend(fontsize=8)
    right.fill_between(t, -dataset.band, dataset.band, color="tab:blue", alpha=0.5, label="simultaneous 99 % band")
    right.plot(t, dataset.direct_mean - z, ".", ms=3, color="tab:orange", label="direct mean − closure mean")
    right.plot(t, dataset.ode - z, "k--", lw=1, label="closed ODE − closure mean")
    right.axhline(0, color="k", lw=0.5)
    right.set(xlabel="t", ylabel="difference", title="the band, magnified")
    right.legend(fontsize=8)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"figure written to {png}")
