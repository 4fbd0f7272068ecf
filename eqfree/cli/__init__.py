"""The ``eqfree`` command.

    eqfree systems
    eqfree simulate --system NAME [--param k=v]... --walkers N --steps N [--dt DT]
                    [--save-every K] --seed S --out PATH.zarr
    eqfree stats PATH.zarr --coord x2 [--discard T]
    eqfree umbrella --system NAME --cv SPEC --grid START:STOP:NUM --kappa K --steps N --walkers W
                    --seed S --out PATH.zarr [--estimator wham|mbar]
    eqfree closure estimate --system NAME --cv SPEC --lift SPEC --grid START:STOP:NUM --burst TAU
                    --replicas R --seed S --out PATH.zarr [--scheduler ADDRESS]
    eqfree closure integrate --closure PATH.zarr --z0 Z --t-end T --out PATH.zarr [--compare W --png P]
    eqfree project --system NAME --cv SPEC --lift SPEC --z0 Z --t-end T --macro-step D --burst TAU
                    --replicas R --seed S --out PATH.zarr
    eqfree train-lift --data PATH.zarr --cv SPEC --method ccgan|score [--loss hard|soft] [--noise-dim D]
                    [--epochs N] --seed S --out MODEL
    eqfree train-cg [--data PATH.zarr] [--system NAME [--alpha A]] [--latent-dim 2] [--steps N]
                    [--importance-samples K] --seed S --out MODEL
    eqfree lift --model MODEL --at Z[,Z...] --n N --seed S --out PATH.zarr
                    [--method assisted --system NAME --kappa K --steps N --runs R]
    eqfree explore --system NAME --data PATH.zarr --cv SPEC --to Z --step D --kappa K --steps N
                    --seed S --out PATH.zarr [--model MODEL] [--save-model DIR]
    eqfree run RECIPE.toml

A CV SPEC is a coordinate (``x1`` or a 0-based index) or a ``.npz`` file written by
``KernelExpansion.save`` (a learned diffusion-map coordinate). A lift SPEC is ``exact`` (the system's
known conditional law) or ``umbrella:kappa=K,steps=N`` (umbrella sampling on the CV).

``alanine_dipeptide`` runs OpenMM: states in nm, times and ``--dt`` in ps, ``--kappa`` in
kJ/mol/rad², ``--cv phi`` or ``psi`` (radians), parameters such as ``--param gb=gbn2``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tomllib
import torch
import xarray as xr

from eqfree import systems

from ..errors import InputError
from ..io import open_zarr, parameters_of, provenance, write_zarr
from ..lift import UmbrellaSampling, collective_variable
from ..parallel import executor_for
from ..restrict import Coordinates, KernelExpansion, parse_coordinate
from ..seeding import child
from ..statistics import ensemble_moments


def _key_value(text: str) -> tuple[str, float | str]:
    """``k=v``: v a number where it reads as one, else a word (e.g. ``gb=gbn2``); the system checks it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected k=v, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        return key.strip(), value.strip()


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


def _grid(text: str) -> np.ndarray:
    try:
        start, stop, num = text.split(":")
        return np.linspace(float(start), float(stop), int(num))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP:NUM (e.g. -3.5:3.5:25), got {text!r}") from None


def _system(args):
    return systems.get(args.system, **dict(args.param))


def _dt(args, system) -> float:
    return system.dt if args.dt is None else args.dt


def _restriction(spec: str, dim: int):
    """The Restrict operator of a CV spec, shape (..., 1): a coordinate name/index, or a saved kernel
    expansion (``.npz``, a learned diffusion-map coordinate)."""
    return KernelExpansion.load(spec) if spec.endswith(".npz") else Coordinates(spec, dim)


def _cv(spec: str, system, period: float | None = None):
    """The CV of a spec, for a bias."""
    return collective_variable(_restriction(spec, system.dim), period=period)


def _coarse_operators(args, system):
    """The fine step, the restriction and the lift given by ``--dt``, ``--cv`` and ``--lift``."""
    dt = _dt(args, system)
    restrict = _restriction(args.cv, system.dim)
    return dt, restrict, _lift(args.lift, system, collective_variable(restrict), dt)


def _lift(spec: str, system, cv, dt: float):
    """``exact`` or ``umbrella:kappa=K,steps=N``."""
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
        return UmbrellaSampling(system, cv, kappa, dt=dt, n_steps=steps, beta=getattr(system, "beta", 1.0))
    raise InputError(f"lift {spec!r} not understood: use 'exact' or 'umbrella:kappa=K,steps=N'")


def cmd_systems(args) -> int:
    for name in systems.available():
        system = systems.get(name)
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in system.params.items())
        print(f"{name:18s} dim={system.dim} dt={system.dt:g} slow={','.join(system.slow) or '(learned)'}")
        print(f"{'':18s} {system.summary}")
        print(f"{'':18s} parameters: {params}")
    return 0


def cmd_simulate(args) -> int:
    system = _system(args)
    dt = _dt(args, system)
    molecular = not isinstance(system, systems.System)  # OpenMM: nm and ps, no torch options
    options = {} if molecular else {"device": args.device, "noise_dtype": getattr(torch, args.noise_dtype)}
    trajectory = system.simulate(args.walkers, args.steps, seed=args.seed, dt=dt, x0=args.x0,
                                 save_every=args.save_every, progress=not args.quiet, **options)
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
        "noise_dtype": args.noise_dtype,
    }
    method = "Langevin molecular dynamics (OpenMM)" if molecular else "Euler-Maruyama ensemble"
    dataset.attrs = provenance(f"{system.name}: {method}", parameters, ["eqfree", *args.argv])
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


def _recipe_parameters(args, **extra) -> dict:
    """The choices of a command, for the provenance attributes."""
    chosen = {k: v for k, v in vars(args).items() if k not in {"run", "argv", "recipe", "quiet", "overwrite"}}
    return {**chosen, **extra, **({"recipe": args.recipe} if getattr(args, "recipe", None) else {})}


def cmd_umbrella(args) -> int:
    system = _system(args)
    dt = _dt(args, system)
    initial = None if args.initial is None else open_zarr(args.initial)["x"].values.reshape(-1, system.dim)
    if isinstance(system, systems.System):
        sampler = UmbrellaSampling(system, _cv(args.cv, system, args.period), args.kappa, dt=dt, n_steps=args.steps,
                                   walkers=args.walkers, beta=getattr(system, "beta", 1.0),
                                   save_every=args.save_every, initial=initial)
    else:  # a molecule: the bias on a dihedral is a force of its own engine
        sampler = system.umbrella(args.kappa, cv=args.cv, n_steps=args.steps, walkers=args.walkers,
                                  save_every=args.save_every, initial=initial, dt=dt)
    with executor_for(args.scheduler) as executor:
        windows = sampler.run(args.grid, seed=args.seed, executor=executor, progress=not args.quiet)
    fitted = sampler.reweight(windows, args.estimator, bins=args.bins)
    dataset = xr.merge([
        windows.drop_attrs(),
        fitted.pmf_,
        xr.Dataset({"f": ("window", fitted.f_, {"long_name": "window free energy", "units": "kT"}),
                    "f_stderr": ("window", fitted.f_stderr_, {"units": "kT"}),
                    "overlap": (("window", "window_to"), fitted.overlap_, {"long_name": "overlap matrix"})}),
    ])
    dataset.attrs = provenance(f"{system.name}: umbrella sampling on {sampler.cv.name}, {args.estimator.upper()} PMF",
                               _recipe_parameters(args, system_params=system.params, dt=dt, beta=sampler.beta),
                               ["eqfree", *args.argv])
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    pmf = fitted.pmf_
    print(f"wrote {path}: {len(args.grid)} windows, {dataset.sizes['sample']} decorrelated samples; "
          f"PMF over {sampler.cv.name} in [{float(pmf.cv[0]):.3g}, {float(pmf.cv[-1]):.3g}], "
          f"max {float(pmf.pmf.max()):.2f} kT (± {float(pmf.pmf_stderr.max()):.2f})")
    return 0


def _estimator(args, system):
    from eqfree.closures import BurstEstimator, ConditionalAverageEstimator

    dt, restrict, lift = _coarse_operators(args, system)
    if args.estimator == "bursts":
        if args.burst is None:
            raise InputError("the bursts estimator needs the burst duration: pass --burst TAU")
        return BurstEstimator(lift, system.evolver(dt), restrict, tau=args.burst, n_replicas=args.replicas)
    if not isinstance(restrict, Coordinates):
        raise InputError("the conditional-average estimator needs the slow drift of a coordinate CV; use --estimator bursts")
    index = restrict.indices[0]
    slow_drift = lambda x: system.drift(torch.as_tensor(x), 0.0)[:, index].numpy()  # noqa: E731
    return ConditionalAverageEstimator(lift, slow_drift, n_samples=args.replicas)


def cmd_closure_estimate(args) -> int:
    from eqfree.closures import estimate_closure

    system = _system(args)
    estimator = _estimator(args, system)
    with executor_for(args.scheduler) as executor:
        dataset = estimate_closure(
            estimator, args.grid, seed=args.seed, store=args.out, overwrite=args.overwrite, executor=executor,
            progress=not args.quiet, command=["eqfree", *args.argv],
            metadata=_recipe_parameters(args, system_params=system.params) | {"scheduler": None, "out": None})
    done = int(dataset.done.sum())
    print(f"{args.out}: {done}/{dataset.sizes['cv']} grid points done; drift in "
          f"[{float(dataset.drift.min()):.4g}, {float(dataset.drift.max()):.4g}], "
          f"largest standard error {float(dataset.drift_stderr.max()):.3g}")
    return 0


def cmd_closure_integrate(args) -> int:
    from eqfree.closures import Closure, integrate

    closure = Closure.from_zarr(args.closure)
    times = np.linspace(0.0, args.t_end, args.points)
    path = integrate(closure, args.z0, (0.0, args.t_end), t_eval=times)
    dataset = xr.Dataset({"z": path})
    if args.compare:
        dataset["direct_mean"], dataset["direct_stderr"] = _direct_simulation(closure, args, times)
    dataset.attrs = provenance("closed ODE dz/dt = B(z) of a closure", _recipe_parameters(args), ["eqfree", *args.argv])
    write_zarr(dataset, args.out, overwrite=args.overwrite)
    if args.compare:
        _print_comparison(dataset)
        if args.png:
            _plot_comparison(dataset, closure, args.png)
    print(f"wrote {args.out}: z(t) on {len(times)} times, z({args.t_end:g}) = {float(path[-1]):.5g}")
    return 0


def _direct_simulation(closure, args, times):
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
    cv = _cv(metadata["cv"], system)
    lift = _lift(metadata["lift"], system, cv, dt)
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


def _print_comparison(dataset) -> None:
    print(f"{'t':>8} {'closure':>10} {'direct':>10} {'± se':>8} {'diff/se':>8}")
    for i in np.linspace(0, dataset.sizes["time"] - 1, min(11, dataset.sizes["time"])).astype(int):
        row = dataset.isel(time=i)
        se = float(row.direct_stderr)
        gap = (float(row.z) - float(row.direct_mean)) / se if se > 0 else 0.0
        print(f"{float(row.time):8.3f} {float(row.z):10.5f} {float(row.direct_mean):10.5f} {se:8.5f} {gap:+8.2f}")


def _plot_comparison(dataset, closure, png) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    data = closure.dataset
    left.errorbar(data.cv, data.drift, yerr=3 * data.drift_stderr, fmt=".", ms=3, label="estimated B(z) ± 3 se")
    left.set(xlabel="z", ylabel="B(z)", title="averaged drift across the grid")
    left.legend()
    t = dataset.time
    right.fill_between(t, dataset.direct_mean - 3 * dataset.direct_stderr, dataset.direct_mean + 3 * dataset.direct_stderr,
                       alpha=0.3, label="direct fine simulation ± 3 se")
    right.plot(t, dataset.z, "k", label="closed ODE dz/dt = B(z)")
    right.set(xlabel="t", ylabel="z", title="closure against direct simulation")
    right.legend()
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    print(f"figure written to {png}")


def cmd_project(args) -> int:
    from ..coarse import ReplicaBursts, projective_integrate
    from ..operators import CoarseTimeStepper

    system = _system(args)
    dt, restrict, lift = _coarse_operators(args, system)
    stepper = CoarseTimeStepper(lift, system.evolver(dt), restrict)
    bursts = ReplicaBursts(stepper, args.burst, args.replicas, args.seed, t_heal=args.heal)
    result = projective_integrate(bursts, args.z0, args.t_end, args.macro_step, method=args.method,
                                  realizations=args.realizations)
    result.attrs = {**result.attrs, **provenance(f"{system.name}: coarse projective integration",
                                                 _recipe_parameters(args, system_params=system.params, dt=dt),
                                                 ["eqfree", *args.argv])}
    write_zarr(result, args.out, overwrite=args.overwrite)
    steps = int(result.fine_steps[-1])
    print(f"wrote {args.out}: z({args.t_end:g}) = {float(result.z[-1, 0]):.5g} ± {float(result.z_stderr[-1, 0]):.2g} "
          f"after {result.sizes['time'] - 1} macro steps, {steps} fine steps per replica "
          f"({steps * args.replicas * args.realizations} in all; a direct run takes {round(args.t_end / dt)} per walker)")
    return 0


def _training_pairs(args):
    """States (N, dim) of ``--variable`` and their CV labels (N,) from a store of ``simulate`` or ``umbrella``."""
    dataset = open_zarr(args.data)
    if args.variable not in dataset:
        raise InputError(f"{args.data} has no variable {args.variable!r}; it has {sorted(dataset.data_vars)}")
    if "time" in dataset.dims:
        dataset = dataset.sel(time=slice(args.discard, None))
    x, samples = dataset["x"], dataset[args.variable]
    dim = x.sizes["coord"]
    states = x.values.reshape(-1, dim)
    if states.shape[0] == 0:
        raise InputError(f"no samples left in {args.data} after --discard {args.discard}")
    labels = np.asarray(_restriction(args.cv, dim)(states)).reshape(len(states), -1)
    if labels.shape[1] != 1:
        raise InputError(f"CV {args.cv!r} has {labels.shape[1]} components; a conditional generator takes one")
    return samples.values.reshape(len(states), -1), labels[:, 0], [str(c) for c in samples[samples.dims[-1]].values]


def cmd_train_lift(args) -> int:
    from ..lift.generative import CcGAN, ConditionalScoreModel

    X, y, coords = _training_pairs(args)
    options = {"epochs": args.epochs, "batch_size": args.batch_size, "device": args.device}
    if args.lr is not None:
        options["lr"] = args.lr
    if args.method == "ccgan":
        model = CcGAN(loss=args.loss, noise_dim=args.noise_dim, preset=args.preset, **options)
    else:
        model = ConditionalScoreModel(**options)
    model.fit(X, y, seed=args.seed, coords=coords, progress=not args.quiet)
    model.training_.update(data=str(args.data), cv=args.cv, variable=args.variable, discard=args.discard)
    path = model.save(args.out)
    final = {name: float(values[-100:].mean()) for name, values in model.history_.items()}
    print(f"wrote {path}: {args.method} on {len(y)} samples {tuple(coords)} labelled by {args.cv} in "
          f"[{y.min():.4g}, {y.max():.4g}], {model.training_['seconds']:.1f} s; final losses "
          + ", ".join(f"{name} {value:.4f}" for name, value in final.items()))
    return 0


def cmd_train_cg(args) -> int:
    from ..lift.variational import VAE, ReverseKL

    if args.data is None and args.system is None:
        raise InputError("give --data (a VAE on its states), --system (reverse KL on its energy), or both (mixed)")
    X, coords = None, None
    if args.data is not None:
        dataset = open_zarr(args.data)
        if args.variable not in dataset:
            raise InputError(f"{args.data} has no variable {args.variable!r}; it has {sorted(dataset.data_vars)}")
        if "time" in dataset.dims:
            dataset = dataset.sel(time=slice(args.discard, None))
        states = dataset[args.variable]
        X, coords = states.values.reshape(-1, states.shape[-1]), [str(c) for c in states[states.dims[-1]].values]
    options = {"latent_dim": args.latent_dim, "widths": args.widths, "steps": args.steps, "device": args.device,
               "importance_samples": args.importance_samples}
    options.update({k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr)) if v is not None})
    if args.system is None:
        model = VAE(ard=not args.no_ard, kl_warmup=args.kl_warmup, **options)
        model.fit(X, seed=args.seed, coords=coords, progress=not args.quiet)
        model.training_.update(data=str(args.data), variable=args.variable, discard=args.discard)
        summary = f"VAE on {len(X)} states, ARD switched off {model.switched_off_:.1%} of the decoder parameters"
    else:
        system = _system(args)
        if not hasattr(system, "potential"):
            raise InputError(f"system {system.name!r} has no potential energy: reverse KL needs one")
        if (X is None) != (args.alpha is None):
            raise InputError("--alpha weighs the data term of the mixed objective: give it exactly when --data is given")
        model = ReverseKL(beta_start=args.beta_start, threshold=args.threshold, temper_every=args.temper_every,
                          steps_at_target=args.steps_at_target, alpha=args.alpha or 0.0, **options)
        beta = getattr(system, "beta", 1.0)
        model.fit(system.potential, dim=system.dim, seed=args.seed, beta=beta, X=X, coords=coords,
                  progress=not args.quiet)
        model.training_.update(system=system.name, system_params=system.params, data=args.data and str(args.data))
        sample = model.reweight(system.potential, args.samples, seed=child(args.seed, 2), beta=beta)
        bound = f", log Z = {system.log_partition():.4f}" if hasattr(system, "log_partition") else ""
        model.training_["evaluation"] = {"samples": args.samples, "loss": sample.loss, "loss_stderr": sample.loss_stderr,
                                         "log_partition_estimate": sample.log_partition, "kish_ess": sample.ess}
        summary = (f"reverse KL on {system.name} (beta {beta:g}{'' if X is None else f', alpha {args.alpha:g}, {len(X)} states'})"
                   f", {model.training_['energy_evaluations']} energy evaluations, {model.training_['rejected_steps']} "
                   f"rejected steps; on {args.samples} draws: loss {sample.loss:.4f} ± {sample.loss_stderr:.4f} "
                   f"(>= -log Z{bound}), importance log Z {sample.log_partition:.4f}, Kish ESS {sample.ess:.0f}")
    path = model.save(args.out)
    print(f"wrote {path}: {summary}; {model.training_['seconds']:.1f} s")
    return 0


def _assisted(args, model):
    """The generator-seeded umbrella lift of ``lift --method assisted``."""
    from ..lift import AssistedUmbrella

    args.cv = args.cv or model.training_.get("cv")
    missing = [name for name in ("system", "kappa", "steps", "cv") if getattr(args, name) is None]
    if missing:
        raise InputError(f"--method assisted runs biased dynamics: give --{' --'.join(missing)}")
    system = _system(args)
    return AssistedUmbrella(model, system, _cv(args.cv, system), args.kappa, dt=_dt(args, system),
                            n_steps=args.steps, runs=args.runs, beta=getattr(system, "beta", 1.0))


def cmd_lift(args) -> int:
    from ..lift.generative import load_generator
    from ..metrics import label_consistency

    model = load_generator(args.model, device=args.device)
    lift = model if args.method == "generator" else _assisted(args, model)
    at = np.asarray(args.at, dtype=float)
    samples = np.stack([lift(z, args.n, seed=child(args.seed, i)) for i, z in enumerate(at)])
    dataset = xr.Dataset({"x": (("z", "sample", "coord"), samples, {"long_name": "lifted fine states", "units": "1"})},
                         coords={"z": at, "coord": model.coords_})
    dataset["z"].attrs.update(long_name="conditioning CV value", units="1")
    dataset.attrs = provenance(f"{model.method} {args.method} lift from {args.model}", _recipe_parameters(args),
                               ["eqfree", *args.argv])
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    print(f"wrote {path}: {args.n} states at each of {len(at)} CV value(s)")
    cv, variable = model.training_.get("cv"), model.training_.get("variable", "x")
    if cv is not None and variable == "x":
        restrict = _restriction(cv, model.dim_)
        for z, states in zip(at, samples):
            print(f"  z = {z:g}: label consistency mean |R(x) - z| = {label_consistency(restrict, states, z):.4g}")
    return 0


def cmd_explore(args) -> int:
    from ..lift import ConditionalScoreModel, explore
    from ..lift.generative import load_generator

    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; choose another path or pass --overwrite")
    system = _system(args)
    args.variable, args.discard = "x", 0.0
    X, y, coords = _training_pairs(args)
    if args.model is not None:
        model = load_generator(args.model, device=args.device)
    else:
        model = ConditionalScoreModel(epochs=args.train_epochs, device=args.device)
        model.fit(X, y, seed=child(args.seed, 0), coords=coords, progress=not args.quiet)
    try:
        exact = system.exact_lift(_dt(args, system))
        reference = lambda z, n, seed: exact(np.atleast_1d(z), n, seed=seed)  # noqa: E731
    except ValueError:
        reference = None
    result = explore(model, X, system, args.cv, to=args.to, step=args.step, kappa=args.kappa, dt=_dt(args, system),
                     n_steps=args.steps, runs=args.runs, epochs=args.epochs, tolerance=args.tolerance,
                     max_rounds=args.max_rounds, reference=reference, seed=child(args.seed, 1), store=args.out,
                     progress=not args.quiet)
    result.attrs.update(provenance(f"{system.name}: exploration to {args.cv} = {args.to:g}",
                                   _recipe_parameters(args, system_params=system.params), ["eqfree", *args.argv]))
    write_zarr(result, args.out, overwrite=True)
    if args.save_model:
        model.training_.update(cv=args.cv, variable="x")
        model.save(args.save_model)
    rounds = result.sizes.get("round", 0)
    print(f"wrote {args.out}: {rounds} round(s), {'reached' if result.attrs['reached'] else 'stopped short of'} "
          f"{args.cv} = {args.to:g}")
    for r in range(rounds):
        print(f"  round {r}: z = {float(result.z[r]):.4g}, label consistency {float(result.label_consistency[r]):.3g}"
              + (f", energy distance to the exact law {float(result.energy[r]):.3g}" if "energy" in result else ""))
    return 0


def cmd_run(args) -> int:
    text = Path(args.recipe_file).read_text()
    try:
        recipe = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{args.recipe_file} is not valid TOML: {error}") from None
    command = recipe.pop("command", None)
    if not isinstance(command, str):
        raise InputError(f"{args.recipe_file} must set command = \"umbrella\", \"closure estimate\", ... ")
    argv = command.split()
    for key, value in recipe.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [f"{flag}={item}" for item in value]
        elif value is not False:
            argv.append(f"{flag}={value}")  # "=": values may start with "-"
    return main(argv, recipe=text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="eqfree", description="Equation-free multiscale toolkit")
    commands = top.add_subparsers(dest="command", required=True)

    commands.add_parser("systems", help="list the model systems").set_defaults(run=cmd_systems)

    sim = commands.add_parser("simulate", help="simulate an ensemble of a system (SDE or OpenMM), written to zarr")
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

    def system_options(command, seed=True):
        command.add_argument("--system", required=True, choices=systems.available())
        command.add_argument("--param", action="append", type=_key_value, default=[], metavar="K=V",
                             help="override a system parameter (repeatable)")
        command.add_argument("--dt", type=float, default=None, help="fine time step (default: the system's)")
        if seed:
            command.add_argument("--seed", type=int, required=True)

    def output_options(command):
        command.add_argument("--out", required=True, help="output zarr store")
        command.add_argument("--overwrite", action="store_true")
        command.add_argument("--quiet", action="store_true", help="no progress bars")

    umbrella = commands.add_parser("umbrella", help="umbrella sampling windows across a CV grid, PMF by WHAM or MBAR")
    system_options(umbrella)
    umbrella.add_argument("--cv", required=True,
                          help="x1, 0, ... or a saved kernel expansion (.npz); phi or psi for alanine_dipeptide")
    umbrella.add_argument("--period", type=float, default=None, help="period of an angular CV (e.g. 6.283185)")
    umbrella.add_argument("--grid", type=_grid, required=True, metavar="START:STOP:NUM", help="window centres")
    umbrella.add_argument("--kappa", type=float, required=True, help="spring constant")
    umbrella.add_argument("--steps", type=_positive_int, required=True, help="fine steps per window")
    umbrella.add_argument("--walkers", type=_positive_int, required=True, help="walkers per window")
    umbrella.add_argument("--save-every", type=_positive_int, default=1)
    umbrella.add_argument("--initial", default=None, metavar="PATH.zarr",
                          help="start each window from the states of a simulated store nearest its centre "
                               "(default: the system's x0)")
    umbrella.add_argument("--estimator", choices=("wham", "mbar"), default="wham")
    umbrella.add_argument("--bins", type=_positive_int, default=100, help="histogram bins of the PMF")
    umbrella.add_argument("--scheduler", default=None, help="dask scheduler address (default: run here)")
    output_options(umbrella)
    umbrella.set_defaults(run=cmd_umbrella)

    closure = commands.add_parser("closure", help="averaged-drift closures: estimate on a grid, integrate")
    closure_commands = closure.add_subparsers(dest="closure_command", required=True)
    estimate = closure_commands.add_parser("estimate", help="B(z) (and D(z)) on a grid of CV values, resumable")
    system_options(estimate)
    estimate.add_argument("--cv", required=True, help="x1, 0, ... or a saved kernel expansion (.npz)")
    estimate.add_argument("--lift", default="exact", help="exact | umbrella:kappa=K,steps=N")
    estimate.add_argument("--grid", type=_grid, required=True, metavar="START:STOP:NUM")
    estimate.add_argument("--estimator", choices=("bursts", "conditional"), default="bursts")
    estimate.add_argument("--burst", type=float, default=None, help="burst duration tau (bursts estimator)")
    estimate.add_argument("--replicas", type=_positive_int, required=True, help="lifted states per grid point")
    estimate.add_argument("--scheduler", default=None, help="dask scheduler address (default: run here)")
    output_options(estimate)
    estimate.set_defaults(run=cmd_closure_estimate)

    integrate = closure_commands.add_parser("integrate", help="solve the closed ODE; optionally compare with direct simulation")
    integrate.add_argument("--closure", required=True, help="store written by `eqfree closure estimate`")
    integrate.add_argument("--z0", type=float, required=True)
    integrate.add_argument("--t-end", type=float, required=True)
    integrate.add_argument("--points", type=_positive_int, default=101, help="output times, equispaced from 0")
    integrate.add_argument("--compare", type=_positive_int, default=0, metavar="WALKERS",
                           help="also run this many direct fine simulations from z0 and print a table")
    integrate.add_argument("--seed", type=int, default=None, help="seed of the direct simulations (with --compare)")
    integrate.add_argument("--png", default=None, help="figure of the closure and the comparison")
    output_options(integrate)
    integrate.set_defaults(run=cmd_closure_integrate)

    project = commands.add_parser("project", help="coarse projective integration of a system's CV from z0")
    system_options(project)
    project.add_argument("--cv", required=True, help="x1, 0, ... or a saved kernel expansion (.npz)")
    project.add_argument("--lift", default="exact", help="exact | umbrella:kappa=K,steps=N")
    project.add_argument("--z0", type=float, required=True)
    project.add_argument("--t-end", type=float, required=True)
    project.add_argument("--macro-step", type=float, required=True)
    project.add_argument("--burst", type=float, required=True, help="burst duration tau")
    project.add_argument("--heal", type=float, default=0.0, help="healing time before the fitted tail")
    project.add_argument("--replicas", type=_positive_int, required=True)
    project.add_argument("--realizations", type=_positive_int, default=2, help="independent runs (for the error)")
    project.add_argument("--method", choices=("euler", "rk2", "rk4"), default="rk2")
    output_options(project)
    project.set_defaults(run=cmd_project)

    train = commands.add_parser("train-lift", help="train a conditional generator (CcGAN or score model) as a lift")
    train.add_argument("--data", required=True, help="store written by `eqfree simulate` or `eqfree umbrella`")
    train.add_argument("--cv", required=True, help="the label: x1, 0, ... or a saved kernel expansion (.npz), on x")
    train.add_argument("--variable", default="x", help="what to generate: x (states) or y (observed coordinates)")
    train.add_argument("--discard", type=float, default=0.0, help="discard saved times t < DISCARD (warm-up)")
    train.add_argument("--method", choices=("ccgan", "score"), required=True)
    train.add_argument("--loss", choices=("hard", "soft"), default="hard", help="CcGAN vicinal loss")
    train.add_argument("--noise-dim", type=_positive_int, default=1, help="CcGAN noise dimension")
    train.add_argument("--preset", default="table1", help="CcGAN networks: table1, table2 or table3")
    train.add_argument("--epochs", type=_positive_int, default=5000)
    train.add_argument("--batch-size", type=_positive_int, default=512)
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: the method's)")
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=int, required=True)
    train.add_argument("--out", required=True, help="model folder (config.json + weights.pt)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train_lift)

    cg = commands.add_parser("train-cg", help="variational coarse-graining: a VAE on data, reverse KL on a system's "
                                              "energy, or both (mixed objective)")
    cg.add_argument("--data", default=None, help="store written by `eqfree simulate` (VAE / mixed objective)")
    cg.add_argument("--variable", default="x", help="which variable of --data to model")
    cg.add_argument("--discard", type=float, default=0.0, help="discard saved times t < DISCARD (warm-up)")
    cg.add_argument("--system", default=None, choices=systems.available(), help="energy for reverse KL")
    cg.add_argument("--param", action="append", type=_key_value, default=[], metavar="K=V")
    cg.add_argument("--alpha", type=float, default=None, help="weight of the data term (with --data and --system)")
    cg.add_argument("--latent-dim", type=int, default=2)
    cg.add_argument("--widths", type=lambda text: [int(w) for w in text.split(",")], default=[50, 100, 100],
                    metavar="D1,D2,D3", help="network widths (Tables 1-2: 50,100,100)")
    cg.add_argument("--steps", type=_positive_int, default=5000, help="Adam steps (reverse KL: the most)")
    cg.add_argument("--batch-size", type=_positive_int, default=None)
    cg.add_argument("--lr", type=float, default=None, help="learning rate (default: the model's)")
    cg.add_argument("--no-ard", action="store_true", help="VAE without the ARD prior (maximum likelihood)")
    cg.add_argument("--kl-warmup", type=int, default=0, help="VAE: steps of KL warm-up before the ARD prior starts")
    cg.add_argument("--importance-samples", type=_positive_int, default=1,
                    help="K of the data term's bound (1: the ELBO; more: tighter, for rare states)")
    cg.add_argument("--beta-start", type=float, default=1e-10, help="first inverse temperature of the tempering")
    cg.add_argument("--threshold", type=float, default=2e-3, help="largest predicted KL increase per tempering step")
    cg.add_argument("--temper-every", type=_positive_int, default=50)
    cg.add_argument("--steps-at-target", type=int, default=500, help="steps trained at the target beta")
    cg.add_argument("--samples", type=_positive_int, default=100_000, help="importance draws for the final report")
    cg.add_argument("--device", default="cpu")
    cg.add_argument("--seed", type=int, required=True)
    cg.add_argument("--out", required=True, help="model folder (config.json + weights.pt)")
    cg.add_argument("--quiet", action="store_true", help="no progress bar")
    cg.set_defaults(run=cmd_train_cg)

    lift = commands.add_parser("lift", help="sample fine states at CV values from a trained generator")
    lift.add_argument("--model", required=True, help="folder written by `eqfree train-lift`")
    lift.add_argument("--at", type=_state, required=True, metavar="Z[,Z...]", help="CV value(s)")
    lift.add_argument("--n", type=_positive_int, required=True, help="states per CV value")
    lift.add_argument("--seed", type=int, required=True)
    lift.add_argument("--device", default="cpu")
    lift.add_argument("--method", choices=("generator", "assisted"), default="generator",
                      help="sample the generator, or seed short biased runs with it (generator-assisted US)")
    lift.add_argument("--system", default=None, choices=systems.available(), help="the dynamics (assisted)")
    lift.add_argument("--param", action="append", type=_key_value, default=[], metavar="K=V")
    lift.add_argument("--dt", type=float, default=None, help="fine time step (default: the system's)")
    lift.add_argument("--kappa", type=float, default=None, help="spring constant of the runs (assisted)")
    lift.add_argument("--steps", type=_positive_int, default=None, help="fine steps per run (assisted)")
    lift.add_argument("--runs", type=_positive_int, default=10, help="parallel runs (assisted)")
    lift.add_argument("--cv", default=None, help="the biased CV (assisted; default: the one the model was trained on)")
    output_options(lift)
    lift.set_defaults(run=cmd_lift)

    exploring = commands.add_parser("explore", help="extend a generator beyond its data: extrapolate, refine by "
                                                    "generator-seeded umbrella sampling, retrain, repeat")
    system_options(exploring)
    exploring.add_argument("--data", required=True, help="store written by `eqfree simulate` (training states)")
    exploring.add_argument("--cv", required=True, help="x1, 0, ... or a saved kernel expansion (.npz)")
    exploring.add_argument("--to", type=float, required=True, help="the CV value to reach")
    exploring.add_argument("--step", type=float, required=True, help="how far each round goes beyond the data")
    exploring.add_argument("--kappa", type=float, required=True, help="spring constant of the refining runs")
    exploring.add_argument("--steps", type=_positive_int, required=True, help="fine steps per refining run")
    exploring.add_argument("--runs", type=_positive_int, default=10)
    exploring.add_argument("--epochs", type=_positive_int, default=500, help="retraining epochs per round")
    exploring.add_argument("--tolerance", type=float, default=None, help="largest accepted label consistency")
    exploring.add_argument("--max-rounds", type=_positive_int, default=20)
    exploring.add_argument("--model", default=None, help="a trained generator (default: train a score model)")
    exploring.add_argument("--train-epochs", type=_positive_int, default=4000, help="epochs of that first training")
    exploring.add_argument("--save-model", default=None, metavar="DIR", help="save the retrained generator")
    exploring.add_argument("--device", default="cpu")
    output_options(exploring)
    exploring.set_defaults(run=cmd_explore)

    run = commands.add_parser("run", help="run a command whose options are given in a TOML recipe")
    run.add_argument("recipe_file", metavar="RECIPE.toml")
    run.set_defaults(run=cmd_run)
    return top


def main(argv: list[str] | None = None, *, recipe: str | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv, args.recipe = argv, recipe
    try:
        return args.run(args)
    except (ValueError, TypeError, ImportError, OSError, FloatingPointError, RuntimeError) as error:
        print(f"eqfree {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
