"""The ``eqfree`` command.

    eqfree systems
    eqfree simulate --system NAME [--param k=v]... --walkers N --steps N [--dt DT]
                    [--save-every K] --seed S --out PATH.zarr
    eqfree stats PATH.zarr --coord x2 [--discard T]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import xarray as xr

import systems

from .io import open_zarr, parameters_of, provenance, write_zarr
from .restrict import parse_coordinate
from .statistics import ensemble_moments


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"value of {key!r} must be a number, got {value!r}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _state(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def cmd_systems(args) -> int:
    for name in systems.available():
        system = systems.get(name)
        params = ", ".join(f"{k}={v:g}" for k, v in system.params.items())
        print(f"{name:18s} dim={system.dim} dt={system.dt:g} slow={','.join(system.slow) or '(learned)'}")
        print(f"{'':18s} {system.summary}")
        print(f"{'':18s} parameters: {params}")
    return 0


def cmd_simulate(args) -> int:
    system = systems.get(args.system, **dict(args.param))
    dt = system.dt if args.dt is None else args.dt
    trajectory = system.simulate(
        args.walkers, args.steps, seed=args.seed, dt=dt, x0=args.x0, save_every=args.save_every,
        device=args.device, noise_dtype=getattr(torch, args.noise_dtype), progress=not args.quiet,
    )
    trajectory.attrs.update(units="1")
    data = {"x": trajectory}
    if system.observed:
        data["y"] = xr.DataArray(
            system.observe(trajectory.values), dims=("time", "walker", "obs"),
            coords={"obs": list(system.observed)},
            attrs={"long_name": "observed coordinates", "units": "1"},
        )
    dataset = xr.Dataset(data)
    dataset["time"].attrs.update(long_name="simulation time", units="1")
    parameters = {
        "system": system.name, "system_params": system.params, "walkers": args.walkers, "steps": args.steps,
        "dt": dt, "save_every": args.save_every, "seed": args.seed, "x0": args.x0, "device": args.device,
        "noise_dtype": args.noise_dtype,
    }
    dataset.attrs = provenance(f"{system.name}: Euler-Maruyama ensemble", parameters, ["eqfree", *args.argv])
    dataset.attrs["system"] = system.name
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    print(f"wrote {path}: x{tuple(trajectory.shape)} (time, walker, coord), t in [0, {float(trajectory.time[-1]):g}]")
    return 0


def cmd_stats(args) -> int:
    dataset = open_zarr(args.store)
    x = dataset["x"]
    index = parse_coordinate(args.coord, x.sizes["coord"])
    samples = x.isel(coord=index).sel(time=slice(args.discard, None)).values
    if samples.shape[0] == 0:
        raise ValueError(f"nothing left after discarding t < {args.discard}: choose a smaller --discard")
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


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="eqfree", description="Equation-free multiscale toolkit")
    commands = top.add_subparsers(dest="command", required=True)

    commands.add_parser("systems", help="list the model systems").set_defaults(run=cmd_systems)

    sim = commands.add_parser("simulate", help="Euler-Maruyama ensemble of a system, written to zarr")
    sim.add_argument("--system", required=True, choices=systems.available())
    sim.add_argument("--param", action="append", type=_key_value, default=[], metavar="K=V",
                     help="override a system parameter (repeatable)")
    sim.add_argument("--walkers", type=_positive_int, required=True)
    sim.add_argument("--steps", type=int, required=True)
    sim.add_argument("--dt", type=float, default=None, help="time step (default: the system's)")
    sim.add_argument("--save-every", type=_positive_int, default=1)
    sim.add_argument("--seed", type=int, required=True)
    sim.add_argument("--x0", type=_state, default=None, help="initial state, comma-separated (default: the system's)")
    sim.add_argument("--device", default="cpu")
    sim.add_argument("--noise-dtype", choices=("float64", "float32"), default="float64")
    sim.add_argument("--out", required=True, help="output zarr store")
    sim.add_argument("--overwrite", action="store_true")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(run=cmd_simulate)

    stats = commands.add_parser("stats", help="moments of one coordinate of a simulated store, with standard errors")
    stats.add_argument("store")
    stats.add_argument("--coord", required=True, help="x1, x2, ... (1-based) or a 0-based index")
    stats.add_argument("--discard", type=float, default=0.0, help="discard saved times t < DISCARD (warm-up)")
    stats.set_defaults(run=cmd_stats)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, FloatingPointError) as error:
        print(f"eqfree {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
