"""``eqfree train-cg``: variational coarse-graining (Schöberl, Zabaras & Koutsourelakis 2019): a VAE on
data, reverse KL on a system's energy, or both (the mixed objective)."""

from __future__ import annotations

from ..errors import InputError
from ..io import open_zarr
from ..seeding import child
from . import options
from .build import check_output, progress, system_of


def add_parsers(commands, parent) -> None:
    """``train-cg``."""
    cg = commands.add_parser("train-cg", parents=[parent],
                             help="variational coarse-graining: a VAE on data, reverse KL on a system's energy, "
                                  "or both (mixed objective)",
                             example="eqfree train-cg --system double_well --widths 16,32,32 --beta-start 1e-3 "
                                     "--epochs-at-target 0 --seed 1 \\\n    --out build/cg")
    options.add_data(cg, required=False, help="store written by `eqfree simulate` (VAE / mixed objective)")
    options.add_system(cg, required=False, dt=False, help="energy for reverse KL")
    cg.add_argument("--alpha", type=float, default=None,
                    help="weight of the data term, in [0, 1] (with --data and --system)")
    cg.add_argument("--latent-dim", type=int, default=2, help="dimension of the latent z")
    cg.add_argument("--widths", type=lambda text: [int(w) for w in text.split(",")], default=[50, 100, 100],
                    metavar="D1,D2,D3", help="network widths (Tables 1-2: 50,100,100)")
    options.add_epochs(cg, help="Adam steps (reverse KL: the most)", default=5000)
    options.add_training(cg, batch_size=None)
    cg.add_argument("--no-ard", action="store_true", help="VAE without the ARD prior (maximum likelihood)")
    cg.add_argument("--kl-warmup", type=int, default=0, help="VAE: steps of KL warm-up before the ARD prior starts")
    cg.add_argument("--importance-samples", type=options.positive_int, default=None,
                    help="K of the data term's bound (default: 1, the ELBO, for the VAE; 8 for the mixed objective; "
                         "more: tighter, for rare states)")
    cg.add_argument("--beta-start", type=float, default=1e-10,
                    help="first inverse temperature of the tempering, in 1/kT")
    cg.add_argument("--threshold", type=float, default=2e-3,
                    help="largest predicted KL increase per tempering step, in nats")
    cg.add_argument("--temper-every", type=options.positive_int, default=50, help="epochs between tempering steps")
    cg.add_argument("--epochs-at-target", type=int, default=500, help="epochs trained at the target beta")
    options.add_samples(cg, required=False, default=100_000, help="importance draws for the final report")
    options.add_device(cg)
    options.add_seed(cg)
    options.add_output(cg, help="model folder (config.json + state.pt)")
    cg.set_defaults(run=cmd_train_cg)


def training_states(args):
    """The states (N, dim) of ``--variable`` in ``--data`` after ``--discard``, and their coordinate names."""
    dataset = open_zarr(args.data)
    if args.variable not in dataset:
        raise InputError(f"{args.data} has no variable {args.variable!r}; it has {sorted(dataset.data_vars)}")
    if "time" in dataset.dims:
        dataset = dataset.sel(time=slice(args.discard, None))
    states = dataset[args.variable]
    return states.values.reshape(-1, states.shape[-1]), [str(c) for c in states[states.dims[-1]].values]


def cmd_train_cg(args) -> int:
    """Train a VAE on ``--data``, reverse KL on ``--system``'s energy, or both; save it in ``--out``."""
    from ..lift.variational import VAE, ReverseKL

    if args.data is None and args.system is None:
        raise InputError("give --data (a VAE on its states), --system (reverse KL on its energy), or both (mixed)")
    check_output(args, args.data, model=True)
    X, coords = (None, None) if args.data is None else training_states(args)
    hyper = {"latent_dim": args.latent_dim, "widths": args.widths, "n_epochs": args.epochs, "device": args.device}
    hyper.update({k: v for k, v in (("batch_size", args.batch_size), ("lr", args.lr),
                                    ("importance_samples", args.importance_samples)) if v is not None})
    if args.system is None:
        model = VAE(ard=not args.no_ard, kl_warmup=args.kl_warmup, **hyper)
        model.fit(X, seed=args.seed, coords=coords, progress=progress(args))
        model.training_.update(data=str(args.data), variable=args.variable, discard=args.discard)
        summary = f"VAE on {len(X)} states, ARD switched off {model.switched_off_:.1%} of the decoder parameters"
    else:
        system = system_of(args)
        if not hasattr(system, "potential"):
            raise InputError(f"system {system.name!r} has no potential energy: reverse KL needs one")
        if (X is None) != (args.alpha is None):
            raise InputError("--alpha weighs the data term of the mixed objective: "
                             "give it exactly when --data is given")
        model = ReverseKL(beta_start=args.beta_start, threshold=args.threshold, temper_every=args.temper_every,
                          epochs_at_target=args.epochs_at_target, alpha=args.alpha or 0.0, **hyper)
        beta = system.beta
        model.fit(system.potential, dim=system.dim, seed=args.seed, beta=beta, X=X, coords=coords,
                  progress=progress(args))
        model.training_.update(system=system.name, system_params=system.params, data=args.data and str(args.data))
        sample = model.reweight(system.potential, args.samples, seed=child(args.seed, 2), beta=beta)
        bound = f", log Z = {system.log_partition():.4f}" if hasattr(system, "log_partition") else ""
        model.training_["evaluation"] = {"samples": args.samples, "loss": sample.loss,
                                         "loss_stderr": sample.loss_stderr,
                                         "log_partition_estimate": sample.log_partition, "kish_ess": sample.ess}
        data_term = "" if X is None else f", alpha {args.alpha:g}, {len(X)} states"
        summary = (f"reverse KL on {system.name} (beta {beta:g}{data_term})"
                   f", {model.training_['energy_evaluations']} energy evaluations, "
                   f"{model.training_['rejected_steps']} rejected steps; on {args.samples} draws: "
                   f"loss {sample.loss:.4f} ± {sample.loss_stderr:.4f} (>= -log Z{bound}), "
                   f"importance log Z {sample.log_partition:.4f}, Kish ESS {sample.ess:.0f}")
    path = model.save(args.out)
    print(f"wrote {path}: {summary}; {model.training_['seconds']:.1f} s")
    return 0
