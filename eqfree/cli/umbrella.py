"""``eqfree umbrella``: umbrella sampling windows across a CV grid and the PMF by WHAM or MBAR."""

from __future__ import annotations

import xarray as xr

from eqfree import systems

from ..io import open_zarr, provenance, write_zarr
from ..lift import UmbrellaSampling
from ..parallel import executor_for
from ..seeding import child
from . import options
from .build import check_output, command_line, cv_of, dt_of, recipe_parameters, system_of


def add_parsers(commands, parent) -> None:
    umbrella = commands.add_parser("umbrella", parents=[parent],
                                   help="umbrella sampling windows across a CV grid, PMF by WHAM or MBAR")
    options.add_system(umbrella)
    options.add_seed(umbrella)
    options.add_cv(umbrella, help="x1, 0, ... or a saved kernel expansion (folder); phi or psi for alanine_dipeptide")
    umbrella.add_argument("--period", type=float, default=None, help="period of an angular CV (e.g. 6.283185)")
    options.add_grid(umbrella, help="window centres")
    options.add_kappa(umbrella)
    options.add_steps(umbrella, help="fine steps per window")
    options.add_walkers(umbrella, help="walkers per window")
    umbrella.add_argument("--save-every", type=options.positive_int, default=1)
    umbrella.add_argument("--initial", default=None, metavar="PATH.zarr",
                          help="start each window from the states of a simulated store nearest its centre "
                               "(default: the system's x0)")
    umbrella.add_argument("--estimator", choices=("wham", "mbar"), default="mbar",
                          help="reweighting estimator of the PMF (default: mbar)")
    umbrella.add_argument("--bins", type=options.positive_int, default=100, help="histogram bins of the PMF")
    options.add_scheduler(umbrella)
    options.add_output(umbrella)
    umbrella.set_defaults(run=cmd_umbrella)


def cmd_umbrella(args) -> int:
    check_output(args, args.initial)
    system = system_of(args)
    dt = dt_of(args, system)
    initial = system.x0 if args.initial is None else open_zarr(args.initial)["x"].values.reshape(-1, system.dim)
    # a molecule: the bias on a dihedral becomes a force of its own engine (OpenMMEvolver.biased)
    cv = cv_of(args.cv, system, args.period) if isinstance(system, systems.System) else system.cv(args.cv)
    sampler = UmbrellaSampling(system.evolver(dt), cv, args.kappa, n_steps=args.steps, n_walkers=args.walkers,
                               save_every=args.save_every, initial=initial)
    with executor_for(args.scheduler) as executor:
        windows = sampler.run(args.grid, seed=args.seed, executor=executor, progress=not args.quiet)
    # the run draws from children 0 and 1 of the seed; a WHAM bootstrap from child 2
    fitted = sampler.reweight(windows, args.estimator, bins=args.bins, seed=child(args.seed, 2))
    dataset = xr.merge([
        windows.drop_attrs(),
        fitted.pmf_,
        xr.Dataset({"f": ("window", fitted.f_, {"long_name": "window free energy", "units": "kT"}),
                    "f_stderr": ("window", fitted.f_stderr_, {"units": "kT"}),
                    "overlap": (("window", "window_to"), fitted.overlap_, {"long_name": "overlap matrix"})}),
    ])
    dataset.attrs = provenance(
        f"{system.name}: umbrella sampling on {sampler.cv.name}, {args.estimator.upper()} PMF",
        recipe_parameters(args, system_params=system.params, dt=dt, beta=sampler.beta), command_line(args))
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    pmf = fitted.pmf_
    print(f"wrote {path}: {len(args.grid)} windows, {dataset.sizes['sample']} decorrelated samples; "
          f"PMF over {sampler.cv.name} in [{float(pmf.cv[0]):.3g}, {float(pmf.cv[-1]):.3g}], "
          f"max {float(pmf.pmf.max()):.2f} kT (± {float(pmf.pmf_stderr.max()):.2f})")
    return 0
