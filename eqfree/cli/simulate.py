"""``eqfree systems``, ``eqfree simulate`` and ``eqfree stats``: the fine systems, their ensembles, moments."""

from __future__ import annotations

import torch
import xarray as xr

from eqfree import systems

from ..errors import InputError
from ..io import open_zarr, parameters_of, provenance, write_zarr
from ..restrict import parse_coordinate
from ..statistics import ensemble_moments
from . import options
from .build import check_output, command_line, dt_of, memory_check, progress, system_of


def add_parsers(commands, parent) -> None:
    """``systems``, ``simulate`` and ``stats``."""
    commands.add_parser("systems", parents=[parent], help="list the model systems",
                        example="eqfree systems").set_defaults(run=cmd_systems)

    sim = commands.add_parser("simulate", parents=[parent],
                              help="simulate an ensemble of a system (SDE or OpenMM), written to zarr",
                              example="eqfree simulate --system half_moons --walkers 1000 --steps 5000 "
                                      "--save-every 10 --seed 1 --out build/moons.zarr")
    options.add_system(sim)
    options.add_walkers(sim, help="parallel fine trajectories")
    options.add_steps(sim, help="fine steps per walker")
    sim.add_argument("--save-every", type=options.positive_int, default=1,
                     help="keep every K-th state (fewer saved states, less memory and disk)")
    options.add_seed(sim)
    sim.add_argument("--x0", type=options.numbers, default=None,
                     help="initial state, comma-separated (default: the system's)")
    options.add_device(sim)
    sim.add_argument("--noise-dtype", choices=("float64", "float32"), default="float64",
                     help="precision of the Gaussian increments (the state stays float64)")
    options.add_output(sim)
    sim.set_defaults(run=cmd_simulate)

    stats = commands.add_parser("stats", parents=[parent],
                                help="moments of one coordinate of a simulated store, with standard errors",
                                example="eqfree stats build/moons.zarr --coord x1 --discard 50")
    stats.add_argument("store", help="a store written by `eqfree simulate`")
    stats.add_argument("--coord", required=True, help="x1, x2, ... (1-based) or a 0-based index")
    options.add_discard(stats)
    stats.set_defaults(run=cmd_stats)


def cmd_systems(args) -> int:
    """List the model systems with their step, slow coordinates and parameters."""
    for name in systems.available():
        system = systems.get(name)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in system.params.items())
        print(f"{name:18s} dim={system.dim} dt={system.dt:g} slow={','.join(system.slow) or '(learned)'}")
        print(f"{'':18s} {system.summary}")
        print(f"{'':18s} parameters: {params}")
    return 0


def cmd_simulate(args) -> int:
    """Simulate an ensemble into ``--out`` (refused before any step if it cannot fit in memory)."""
    check_output(args)
    system = system_of(args)
    dt = dt_of(args, system)
    saved = args.steps // args.save_every + 1
    memory_check(args.walkers * saved * (system.dim + len(system.observed)) * 8.0,
                 f"{args.walkers} walkers x {saved} saved states x {system.dim} coordinates",
                 "save fewer states (a larger --save-every), or run fewer --walkers or --steps")
    molecular = not isinstance(system, systems.System)  # OpenMM: nm and ps, no torch options
    torch_options = {} if molecular else {"device": args.device, "noise_dtype": getattr(torch, args.noise_dtype)}
    trajectory = system.simulate(args.walkers, args.steps, seed=args.seed, dt=dt, x0=args.x0,
                                 save_every=args.save_every, progress=progress(args), **torch_options)
    trajectory.attrs.setdefault("units", "1")
    data = {"x": trajectory}
    if system.observed:
        data["y"] = xr.DataArray(
            system.observe(trajectory.values), dims=("time", "walker", "obs"),
            coords={"obs": list(system.observed)},
            attrs={"long_name": "observed coordinates", "units": "1"},
        )
    dataset = xr.Dataset(data)
    dataset["time"].attrs.update(long_name="simulation time", units="ps" if molecular else "1")
    parameters = {
        "system": system.name, "system_params": system.params, "walkers": args.walkers, "steps": args.steps,
        "dt": dt, "save_every": args.save_every, "seed": args.seed, "x0": args.x0, "device": args.device,
        "noise_dtype": args.noise_dtype, **({"recipe": args.recipe} if args.recipe else {}),
    }
    method = "Langevin molecular dynamics (OpenMM)" if molecular else "Euler-Maruyama ensemble"
    dataset.attrs = provenance(f"{system.name}: {method}", parameters, command_line(args))
    dataset.attrs["system"] = system.name
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    print(f"wrote {path}: x{tuple(trajectory.shape)} (time, walker, coord), "
          f"t in [0, {float(trajectory.time[-1]):g}]")
    return 0


def cmd_stats(args) -> int:
    """Mean and variance of one coordinate of a simulated store, with standard errors and exact values."""
    dataset = open_zarr(args.store)
    if "x" not in dataset or "coord" not in dataset["x"].dims:
        raise InputError(f"{args.store} holds no simulated states x (it has {sorted(dataset.data_vars)}): "
                         "stats reads a store written by `eqfree simulate`")
    x = dataset["x"]
    index = parse_coordinate(args.coord, x.sizes["coord"])
    samples = x.isel(coord=index).sel(time=slice(args.discard, None)).values
    if samples.shape[0] == 0:
        raise InputError(f"nothing left after discarding t < {args.discard}: choose a smaller --discard")
    moments = ensemble_moments(samples)
    name = f"x{index + 1}"
    print(f"{name}: {samples.shape[0]} saved times x {moments.n_walkers} walkers after t >= {args.discard:g}")
    print(f"  mean     = {moments.mean:.5f} ± {moments.mean_stderr:.5f}")
    print(f"  variance = {moments.variance:.5f} ± {moments.variance_stderr:.5f}")
    params = parameters_of(dataset.attrs)
    if "system" in params:
        system = systems.get(params["system"], **params["system_params"])
        reference = system.reference_moments(name, params["dt"])
        for label, (mean, var) in (reference or {}).items():
            print(f"  {label:15s} N({mean:g}, {var:.5f}): "
                  f"mean off by {(moments.mean - mean) / moments.mean_stderr:+.2f} se, "
                  f"variance off by {(moments.variance - var) / moments.variance_stderr:+.2f} se")
    return 0
