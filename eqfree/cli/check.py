"""``eqfree check lift|markov|closure-pmf|lifts``: calibrated consistency checks of operators (eqfree.testing).

Each prints a table of per-point results and, with ``--out``, writes them to a store; the exit status is
0 when consistent, 1 when the check rejects, 2 on bad input.
"""

from __future__ import annotations

from ..io import open_zarr, provenance, write_zarr
from ..restrict import collective_variable
from ..testing import check_closure_pmf, check_lift, check_lifts_agree, check_markov
from . import options
from .build import check_path, coarse_operators, command_line, lift_of, progress, recipe_parameters, system_of


def add_parsers(commands, parent) -> None:
    """``eqfree check`` and its four subcommands."""
    check = commands.add_parser("check", parents=[parent], help="calibrated consistency checks of lifts, CVs, closures",
                                example="eqfree check lift --system averaging_cubic --cv x1 --lift exact "
                                        "--grid=-1:1:5 --seed 3")
    checks = check.add_subparsers(dest="check_command", required=True)

    lift = checks.add_parser("lift", parents=[parent], help="is the lift at the conditional equilibrium?",
                             example="eqfree check lift --system averaging_cubic --cv x1 --lift exact --grid=-1:1:5 "
                                     "--seed 3")
    options.add_coarse(lift)
    options.add_grid(lift)
    options.add_steps(lift, required=False, default=100, help="healing steps under the restraint")
    options.add_kappa(lift, required=False, help="restraint spring constant (default 1/dt)")
    _add_test(lift, samples=4000)
    lift.set_defaults(run=cmd_lift)

    markov = checks.add_parser("markov", parents=[parent], help="is the CV Markovian at tau (Chapman-Kolmogorov)?",
                               example="eqfree check markov --system two_slow --cv x1 --lift exact --grid=-1:1:5 "
                                       "--burst 1 --seed 3")
    options.add_coarse(markov)
    options.add_grid(markov)
    options.add_burst(markov)
    _add_test(markov, samples=2000)
    markov.set_defaults(run=cmd_markov)

    lifts = checks.add_parser("lifts", parents=[parent], help="do two lifts give the same law of fine states?",
                              example="eqfree check lifts --system averaging_cubic --cv x1 --lift exact "
                                      "--other umbrella:kappa=10000,steps=200 --grid=-1:1:5 --seed 3")
    options.add_coarse(lifts)
    lifts.add_argument("--other", required=True, help="the second lift: exact | umbrella:kappa=K,steps=N")
    options.add_grid(lifts)
    _add_test(lifts, samples=4000)
    lifts.set_defaults(run=cmd_lifts)

    pmf = checks.add_parser("closure-pmf", parents=[parent], help="does a closure's stationary law match a PMF?",
                            example="eqfree check closure-pmf --closure closure.zarr --pmf umbrella.zarr")
    pmf.add_argument("--closure", required=True, help="closure store with the diffusion (closure estimate, bursts)")
    pmf.add_argument("--pmf", required=True, help="store with the PMF in kT on cv (eqfree umbrella)")
    _add_test(pmf, samples=None)
    pmf.set_defaults(run=cmd_closure_pmf)


def _add_test(command, *, samples: int | None) -> None:
    if samples is not None:
        options.add_samples(command, required=False, default=samples, help="samples per grid point and law")
    command.add_argument("--alpha", type=float, default=0.05, help="level of the check across the grid")
    command.add_argument("--correction", choices=("holm", "bh"), default="holm",
                         help="multiple-testing control: Holm (family-wise) or Benjamini-Hochberg (FDR)")
    command.add_argument("--out", default=None, help="write the per-point results to this zarr store")
    command.add_argument("--overwrite", action="store_true", help="replace an existing output of eqfree")
    command.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_lift(args) -> int:
    """``eqfree check lift``: print the table, write ``--out``; 0 consistent, 1 rejected."""
    _check_out(args)
    system = system_of(args)
    dt, restrict, lift = coarse_operators(args, system)
    report = check_lift(lift, system.evolver(dt), restrict, args.grid, n_steps=args.steps, kappa=args.kappa,
                        n_samples=args.samples, alpha=args.alpha, correction=args.correction, seed=args.seed,
                        progress=progress(args))
    return _finish(args, report, system.name)


def cmd_markov(args) -> int:
    """``eqfree check markov``: print the table, write ``--out``; 0 consistent, 1 rejected."""
    _check_out(args)
    system = system_of(args)
    dt, restrict, lift = coarse_operators(args, system)
    report = check_markov(lift, system.evolver(dt), restrict, args.grid, tau=args.burst, n_samples=args.samples,
                          alpha=args.alpha, correction=args.correction, seed=args.seed, progress=progress(args))
    return _finish(args, report, system.name)


def cmd_lifts(args) -> int:
    """``eqfree check lifts``: print the table, write ``--out``; 0 consistent, 1 rejected."""
    _check_out(args)
    system = system_of(args)
    dt, restrict, lift = coarse_operators(args, system)
    other = lift_of(args.other, system, collective_variable(restrict), dt)
    report = check_lifts_agree(lift, other, args.grid, n_samples=args.samples, alpha=args.alpha,
                               correction=args.correction, seed=args.seed, progress=progress(args))
    return _finish(args, report, system.name)


def cmd_closure_pmf(args) -> int:
    """``eqfree check closure-pmf``: print the table, write ``--out``; 0 consistent, 1 rejected."""
    _check_out(args, args.closure, args.pmf)
    report = check_closure_pmf(open_zarr(args.closure), open_zarr(args.pmf), alpha=args.alpha,
                               correction=args.correction)
    return _finish(args, report, "closure and PMF")


def _check_out(args, *inputs) -> None:
    if args.out is not None:
        check_path(args, args.out, inputs=inputs, flag="--out")


def _finish(args, report, what: str) -> int:
    print(report.table())
    if args.out is not None:
        dataset = report.to_dataset()
        dataset.attrs.update(provenance(f"{what}: {report.check} check", recipe_parameters(args), command_line(args)))
        print(f"wrote {write_zarr(dataset, args.out, overwrite=args.overwrite)}")
    return 0 if report.consistent else 1
