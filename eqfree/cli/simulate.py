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
from .build import check_output, command_line, dt_of, system_of


def add_parsers(commands, parent) -> None:
    commands.add_parser("systems", parents=[parent], help="list the model systems").set_defaults(run=cmd_systems)

    sim = commands.add_parser("simulate", parents=[parent],
                              help="simulate an ensemble of a system (SDE or OpenMM), written to zarr")
    options.add_system(sim)
    options.add_walkers(sim, help="parallel fine trajectories")
    options.add_steps(sim, help="fine steps")
    sim.add_argument("--save-every", type=options.positive_int, default=1)
    options.add_seed(sim)
    sim.add_argument("--x0", type=options.numbers, default=None,
                     help="initial state, comma-separated (default: the system's)")
    options.add_device(sim)
    sim.add_argument("--noise-dtype", choices=("float64", "float32"), default="float64")
    options.add_output(sim)
    sim.set_defaults(run=cmd_simulate)

    stats = commands.add_parser("stats", parents=[parent],
                                help="moments of one coordinate of a simulated store, with standard errors")
    stats.add_argument("store")
    stats.add_argument("--coord", required=True, help="x1, x2, ... (1-based) or a 0-based index")
    options.add_discard(stats)
    stats.set_defaults(run=cmd_stats)


def cmd_systems(args) -> int:
    for name in systems.available():
        system = systems.get(name)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in system.params.items())
        print(f"{name:18s} dim={system.dim} dt={system.dt:g} slow={','.join(system.slow) or '(learned)'}")
        print(f"{'':18s} {system.summary}")
        print(f"{'':18s} parameters: {params}")
    return 0


def cmd_simulate(args) -> int:
    check_output(args)
    system = system_of(args)
    dt = dt_of(args, system)
    molecular = not isinstance(system, systems.System)  # OpenMM: nm and ps, no torch options
    torch_options = {} if molecular else {"device": args.device, "noise_dtype": getattr(torch, args.noise_dtype)}
    trajectory = system.simulate(args.walkers, args.steps, seed=args.seed, dt=dt, x0=args.x0,
                                 save_every=args.save_every, progress=not args.quiet, **torch_options)
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
    dataset = open_zarr(args.store)
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
