"""``eqfree train-lift``, ``eqfree lift`` and ``eqfree explore``: conditional generators as lifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..base import CONFIG
from ..errors import InputError, MissingInputError
from ..io import open_zarr, provenance, write_zarr
from ..seeding import child
from . import options
from .build import (
    check_output,
    check_path,
    command_line,
    cv_of,
    dt_of,
    memory_check,
    progress,
    recipe_parameters,
    restriction,
    system_of,
)


def add_parsers(commands, parent) -> None:
    """``train-lift``, ``lift`` and ``explore``."""
    train = commands.add_parser("train-lift", parents=[parent],
                                help="train a conditional generator (CcGAN or score model) as a lift",
                                example="eqfree train-lift --data build/moons.zarr --cv x1 --method score "
                                        "--epochs 2000 --seed 1 --out build/score")
    options.add_data(train, help="store written by `eqfree simulate` or `eqfree umbrella`")
    options.add_cv(train, help="the label: x1, 0, ... or a saved kernel expansion (folder), on x")
    train.add_argument("--method", choices=("ccgan", "score"), required=True,
                       help="a continuous conditional GAN or a conditional score model")
    train.add_argument("--loss", choices=("hard", "soft"), default="hard", help="CcGAN vicinal loss")
    train.add_argument("--noise-dim", type=options.positive_int, default=1, help="CcGAN noise dimension")
    train.add_argument("--preset", default="table1", help="CcGAN networks: table1, table2 or table3")
    options.add_epochs(train, help="training epochs", default=5000)
    options.add_training(train, batch_size=512)
    options.add_device(train)
    options.add_seed(train)
    options.add_output(train, help="model folder (config.json + state.pt)")
    train.set_defaults(run=cmd_train_lift)

    lift = commands.add_parser("lift", parents=[parent],
                               help="sample fine states at CV values from a trained generator",
                               example="eqfree lift --model build/score --at 0.5,1 --samples 1000 --seed 2 "
                                       "--out build/lifted.zarr")
    lift.add_argument("--model", required=True, help="folder written by `eqfree train-lift`")
    lift.add_argument("--at", type=options.numbers, required=True, metavar="Z[,Z...]",
                      help="CV value(s), in the CV's unit")
    options.add_samples(lift, help="states per CV value")
    options.add_seed(lift)
    options.add_device(lift)
    lift.add_argument("--method", choices=("generator", "assisted"), default="generator",
                      help="sample the generator, or seed short biased runs with it (generator-assisted US)")
    options.add_system(lift, required=False, help="the dynamics (assisted)")
    options.add_kappa(lift, required=False, help="spring constant of the runs (assisted)")
    options.add_steps(lift, required=False, help="fine steps per run (assisted)")
    options.add_walkers(lift, required=False, default=10, help="parallel biased runs (assisted)")
    options.add_cv(lift, required=False, help="the biased CV (assisted; default: the one the model was trained on)")
    options.add_output(lift)
    lift.set_defaults(run=cmd_lift)

    exploring = commands.add_parser("explore", parents=[parent],
                                    help="extend a generator beyond its data: extrapolate, refine by "
                                         "generator-seeded umbrella sampling, retrain, repeat",
                                    example="eqfree explore --system fast_slow_linear --data build/fsl.zarr --cv x1 "
                                            "--to 12 --step 2 --kappa 0.5 \\\n    --steps 500 --seed 4 "
                                            "--out build/rounds.zarr --save-model build/explored")
    options.add_system(exploring)
    options.add_seed(exploring)
    options.add_data(exploring, help="store written by `eqfree simulate` (training states)", variable=False)
    options.add_cv(exploring)
    exploring.add_argument("--to", type=float, required=True, help="the CV value to reach, in the CV's unit")
    exploring.add_argument("--step", type=float, required=True,
                           help="how far each round goes beyond the data, in the CV's unit")
    options.add_kappa(exploring, help="spring constant of the refining runs")
    options.add_steps(exploring, help="fine steps per refining run")
    options.add_walkers(exploring, required=False, default=10, help="parallel refining runs")
    options.add_epochs(exploring, help="retraining epochs per round", default=500)
    exploring.add_argument("--tolerance", type=float, default=None,
                           help="largest accepted label consistency, in the CV's unit (default: none)")
    exploring.add_argument("--max-rounds", type=options.positive_int, default=20, help="rounds at most")
    exploring.add_argument("--model", default=None, help="a trained generator (default: train a score model)")
    exploring.add_argument("--train-epochs", type=options.positive_int, default=4000,
                           help="epochs of that first training")
    exploring.add_argument("--save-model", default=None, metavar="DIR", help="save the retrained generator")
    options.add_device(exploring)
    options.add_output(exploring)
    exploring.set_defaults(run=cmd_explore)


def training_pairs(args, variable: str = "x", discard: float = 0.0):
    """States (N, dim) of ``variable`` and their CV labels (N,) from a store of ``simulate`` or ``umbrella``."""
    dataset = open_zarr(args.data)
    if variable not in dataset:
        raise InputError(f"{args.data} has no variable {variable!r}; it has {sorted(dataset.data_vars)}")
    if "time" in dataset.dims:
        dataset = dataset.sel(time=slice(discard, None))
    x, samples = dataset["x"], dataset[variable]
    dim = x.sizes["coord"]
    states = x.values.reshape(-1, dim)
    if states.shape[0] == 0:
        raise InputError(f"no samples left in {args.data} after --discard {discard}")
    labels = np.asarray(restriction(args.cv, dim)(states)).reshape(len(states), -1)
    if labels.shape[1] != 1:
        raise InputError(f"CV {args.cv!r} has {labels.shape[1]} components; a conditional generator takes one")
    return samples.values.reshape(len(states), -1), labels[:, 0], [str(c) for c in samples[samples.dims[-1]].values]


def cmd_train_lift(args) -> int:
    """Train a CcGAN or score model on ``--data`` labelled by ``--cv``; save it in ``--out``."""
    from ..lift.generative import CcGAN, ConditionalScoreModel

    check_output(args, args.data, model=True)
    X, y, coords = training_pairs(args, args.variable, args.discard)
    hyper = {"n_epochs": args.epochs, "batch_size": args.batch_size, "device": args.device}
    if args.lr is not None:
        hyper["lr"] = args.lr
    if args.method == "ccgan":
        model = CcGAN(loss=args.loss, noise_dim=args.noise_dim, preset=args.preset, **hyper)
    else:
        model = ConditionalScoreModel(**hyper)
    model.fit(X, y, seed=args.seed, coords=coords, progress=progress(args))
    model.training_.update(data=str(args.data), cv=args.cv, variable=args.variable, discard=args.discard)
    path = model.save(args.out)
    final = {name: float(values[-100:].mean()) for name, values in model.history_.items()}
    print(f"wrote {path}: {args.method} on {len(y)} samples {tuple(coords)} labelled by {args.cv} in "
          f"[{y.min():.4g}, {y.max():.4g}], {model.training_['seconds']:.1f} s; final losses "
          + ", ".join(f"{name} {value:.4f}" for name, value in final.items()))
    return 0


def assisted(args, model):
    """The generator-seeded umbrella lift of ``lift --method assisted``."""
    from ..lift import AssistedUmbrella

    args.cv = args.cv or model.training_.get("cv")
    missing = [name for name in ("system", "kappa", "steps", "cv") if getattr(args, name) is None]
    if missing:
        raise InputError(f"--method assisted runs biased dynamics: give --{' --'.join(missing)}")
    system = system_of(args)
    return AssistedUmbrella(model, system.evolver(dt_of(args, system)), cv_of(args.cv, system), args.kappa,
                            n_steps=args.steps, n_walkers=args.walkers)


def trained_generator(path: str, device: str):
    """The conditional generator saved in the folder ``path`` (by ``train-lift`` or ``explore --save-model``)."""
    from ..lift.generative import ConditionalGenerator

    if not (Path(path) / CONFIG).is_file():
        raise MissingInputError(f"{path} is not a saved eqfree conditional generator (no {CONFIG}): "
                                "give the folder that `eqfree train-lift` wrote")
    return ConditionalGenerator.load(path, device=device)


def cmd_lift(args) -> int:
    """Sample ``--samples`` states at each ``--at`` value from a trained generator (or seeded runs)."""
    from ..metrics import label_consistency

    check_output(args, args.model)
    model = trained_generator(args.model, args.device)
    at = np.asarray(args.at, dtype=float)
    memory_check(len(at) * args.samples * model.dim_ * 8.0, f"{len(at)} CV values x {args.samples} samples x "
                 f"{model.dim_} coordinates", "ask for fewer --samples, or fewer values in --at")
    lift = model if args.method == "generator" else assisted(args, model)
    samples = np.stack([lift(z, args.samples, seed=child(args.seed, i)) for i, z in enumerate(at)])
    dataset = xr.Dataset({"x": (("z", "sample", "coord"), samples, {"long_name": "lifted fine states", "units": "1"})},
                         coords={"z": at, "coord": model.coords_})
    dataset["z"].attrs.update(long_name="conditioning CV value", units="1")
    dataset.attrs = provenance(f"{model.method} {args.method} lift from {args.model}", recipe_parameters(args),
                               command_line(args))
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    print(f"wrote {path}: {args.samples} states at each of {len(at)} CV value(s)")
    cv, variable = model.training_.get("cv"), model.training_.get("variable", "x")
    if cv is not None and variable == "x":
        restrict = restriction(cv, model.dim_)
        for z, states in zip(at, samples):
            print(f"  z = {z:g}: label consistency mean |R(x) - z| = {label_consistency(restrict, states, z):.4g}")
    return 0


def cmd_explore(args) -> int:
    """Extend a generator beyond its data to ``--to``, round by round, into ``--out``."""
    from ..lift import ConditionalScoreModel, explore

    check_output(args, args.data, args.model)
    if args.save_model:
        check_path(args, args.save_model, inputs=(args.data, args.model, args.out), flag="--save-model", model=True)
    system = system_of(args)
    X, y, coords = training_pairs(args)
    if args.model is not None:
        model = trained_generator(args.model, args.device)
    else:
        model = ConditionalScoreModel(n_epochs=args.train_epochs, device=args.device)
        model.fit(X, y, seed=child(args.seed, 0), coords=coords, progress=progress(args))
    try:
        exact = system.exact_lift(dt_of(args, system))
        reference = lambda z, n, seed: exact(np.atleast_1d(z), n, seed=seed)
    except InputError:  # no exact conditional law known
        reference = None
    result = explore(model, X, system.evolver(dt_of(args, system)), args.cv, to=args.to, step=args.step,
                     kappa=args.kappa, n_steps=args.steps, n_walkers=args.walkers, n_epochs=args.epochs,
                     tolerance=args.tolerance,
                     max_rounds=args.max_rounds, reference=reference, seed=child(args.seed, 1), store=args.out,
                     progress=progress(args))
    result.attrs.update(provenance(f"{system.name}: exploration to {args.cv} = {args.to:g}",
                                   recipe_parameters(args, system_params=system.params), command_line(args)))
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
