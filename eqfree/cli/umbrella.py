"""``eqfree umbrella``: umbrella sampling windows across a CV grid and the PMF by WHAM or MBAR."""

from __future__ import annotations

import time

import xarray as xr

from eqfree import systems

from ..errors import InputError
from ..io import open_zarr, provenance, write_zarr
from ..lift import UmbrellaSampling
from ..parallel import executor_for
from ..seeding import child
from . import options
from .build import check_output, command_line, cv_of, dt_of, progress, recipe_parameters, system_of
from .reweight import add_solver_options, solver_options


def add_parsers(commands, parent) -> None:
    """Add ``eqfree umbrella`` to the ``commands`` subparsers."""
    umbrella = commands.add_parser("umbrella", parents=[parent],
                                   help="umbrella sampling windows across a CV grid, PMF by WHAM or MBAR",
                                   example="eqfree umbrella --system double_well --cv x1 --grid -3.5:3.5:25 --kappa 20 "
                                           "--dt 5e-4 --steps 8000 \\\n    --walkers 400 --save-every 100 --seed 1 "
                                           "--bins 150 --out build/us.zarr")
    options.add_system(umbrella)
    options.add_seed(umbrella)
    options.add_cv(umbrella, help="x1, 0, ... or a saved kernel expansion (folder); phi or psi for alanine_dipeptide")
    umbrella.add_argument("--period", type=float, default=None, help="period of an angular CV (e.g. 6.283185)")
    options.add_grid(umbrella, help="window centres")
    options.add_kappa(umbrella)
    options.add_steps(umbrella, help="fine steps per window")
    options.add_walkers(umbrella, help="walkers per window")
    umbrella.add_argument("--save-every", type=options.positive_int, default=1,
                          help="keep every k-th step of each walker (default: 1)")
    umbrella.add_argument("--save-states", action="store_true",
                          help="store the states x of the decorrelated samples besides their CV and bias energies "
                               "(default: CV and bias energies only)")
    umbrella.add_argument("--initial", default=None, metavar="PATH.zarr",
                          help="start each window from the states of a simulated store nearest its centre "
                               "(default: the system's x0)")
    umbrella.add_argument("--estimator", choices=("wham", "mbar"), default="wham",
                          help="reweighting estimator of the PMF (default: wham, binless on the samples compressed "
                               "into cells of window and fine CV bin, exact to a stated 1e-3 relative bound; mbar: "
                               "pymbar on every sample, slower and in memory K x N)")
    umbrella.add_argument("--bins", type=options.positive_int, default=100, help="histogram bins of the PMF")
    add_solver_options(umbrella)
    options.add_scheduler(umbrella)
    options.add_output(umbrella)
    umbrella.set_defaults(run=cmd_umbrella)


def cmd_umbrella(args) -> int:
    """Sample the windows, reweight them, write the store and print the split of the time; exit status 0."""
    check_output(args, args.initial)
    system = system_of(args)
    dt = dt_of(args, system)
    if args.initial is None and system.x0 is None:
        raise InputError(f"{system.name} defines no x0 for the walkers to start from: pass initial states with "
                         "--initial PATH.zarr (a store written by eqfree simulate)")
    initial = system.x0 if args.initial is None else open_zarr(args.initial)["x"].values.reshape(-1, system.dim)
    # a molecule: the bias on a dihedral becomes a force of its own engine (OpenMMEvolver.biased)
    cv = cv_of(args.cv, system, args.period) if isinstance(system, systems.System) else system.cv(args.cv)
    sampler = UmbrellaSampling(system.evolver(dt), cv, args.kappa, n_steps=args.steps, n_walkers=args.walkers,
                               save_every=args.save_every, initial=initial)
    start = time.perf_counter()
    with executor_for(args.scheduler) as executor:
        windows = sampler.run(args.grid, seed=args.seed, executor=executor, save_states=args.save_states,
                              progress=progress(args))
    sampled = time.perf_counter()
    # the run draws from children 0 and 1 of the seed; a WHAM bootstrap from child 2
    fitted = sampler.reweight(windows, args.estimator, bins=args.bins, seed=child(args.seed, 2),
                              **solver_options(args))
    dataset = xr.merge([
        windows.drop_attrs(),
        fitted.pmf_,
        xr.Dataset({"f": ("window", fitted.f_, {"long_name": "window free energy", "units": "kT"}),
                    "f_stderr": ("window", fitted.f_stderr_, {"units": "kT"}),
                    "overlap": (("window", "window_to"), fitted.overlap_, {"long_name": "overlap matrix"})}),
    ])
    dataset.attrs = fitted.pmf_.attrs | provenance(
        f"{system.name}: umbrella sampling on {sampler.cv.name}, {args.estimator.upper()} PMF",
        recipe_parameters(args, system_params=system.params, dt=dt, beta=sampler.beta), command_line(args))
    reweighted = time.perf_counter()
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    pmf = fitted.pmf_
    print(f"wrote {path}: {len(args.grid)} windows, {dataset.sizes['sample']} decorrelated samples; "
          f"PMF over {sampler.cv.name} in [{float(pmf.cv[0]):.3g}, {float(pmf.cv[-1]):.3g}], "
          f"max {float(pmf.pmf.max()):.2f} kT (± {float(pmf.pmf_stderr.max()):.2f}); sampling "
          f"{sampled - start:.1f} s, reweighting {reweighted - sampled:.1f} s")
    return 0
