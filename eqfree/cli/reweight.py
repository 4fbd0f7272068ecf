"""``eqfree reweight``: WHAM or MBAR on umbrella data from another engine (text, PLUMED COLVAR, GROMACS xvg)."""

from __future__ import annotations

import glob

from ..errors import MissingInputError
from ..io import provenance, write_zarr
from ..reweight.importing import CV_UNITS, import_windows, pmf_store, reweight_windows
from . import options
from .build import check_output, command_line, recipe_parameters


def add_parsers(commands, parent) -> None:
    """``eqfree reweight``: its options on the series files, their units and the estimator."""
    command = commands.add_parser(
        "reweight", parents=[parent],
        help="PMF by WHAM or MBAR from umbrella windows run elsewhere (text, PLUMED COLVAR, GROMACS xvg)",
        epilog="example: eqfree reweight --centers data/centers.dat --series 'data/prod*_dihed.xvg' "
               "--kappa-units kJ/mol/rad^2 --cv-units deg --temperature 300 --period 360 --bins 36 --out pmf.zarr")
    command.add_argument("--centers", required=True, metavar="FILE",
                         help="one line per series file: centre [kappa [temperature]]")
    command.add_argument("--series", required=True, action="append", metavar="GLOB",
                         help="series files (repeatable; sorted naturally, prod2 before prod10); files sharing a "
                              "centre and kappa are walkers of one window")
    command.add_argument("--column", default="1",
                         help="CV column: number (0 = time, default 1) or name (PLUMED FIELDS, xvg legend)")
    command.add_argument("--kappa", type=float, default=None,
                         help="one spring constant for every window (default: the centres file's second column)")
    command.add_argument("--kappa-units", required=True, metavar="ENERGY/CV^2",
                         help="units of kappa: kJ/mol, kcal/mol or kT per rad^2, deg^2, nm^2, A^2 or 1^2")
    command.add_argument("--cv-units", default=None, choices=tuple(CV_UNITS),
                         help="units of the series (default: those of kappa)")
    command.add_argument("--temperature", type=float, default=None,
                         help="temperature in K (needed unless kappa is in kT; default: the centres file's "
                              "third column)")
    command.add_argument("--period", type=float, default=None, help="period of an angular CV (360 for degrees)")
    command.add_argument("--estimator", choices=("wham", "mbar"), default="mbar", help="default: mbar")
    command.add_argument("--bins", type=options.positive_int, default=100,
                         help="histogram bins of the PMF (default 100)")
    add_solver_options(command)
    options.add_seed(command, required=False, help="seed of the walker bootstrap (default 0)")
    options.add_output(command)
    command.set_defaults(run=cmd_reweight, seed=0)


def add_solver_options(command) -> None:
    """``--max-iterations``, ``--tolerance`` and ``--bootstrap`` of WHAM and MBAR."""
    command.add_argument("--max-iterations", type=options.positive_int, default=1000,
                         help="iterations of the WHAM/MBAR solver (default 1000)")
    command.add_argument("--tolerance", type=float, default=1e-10,
                         help="residual of the self-consistent equations, kT (default 1e-10; missed by ≤ 100x: "
                              "a warning, the result kept)")
    command.add_argument("--bootstrap", type=options.positive_int, default=100,
                         help="bootstrap resamples of whole walkers for the standard errors (default 100)")


def solver_options(args) -> dict:
    """``max_iterations``, ``tolerance`` and ``n_bootstrap`` of WHAM/MBAR from the parsed options."""
    return {"max_iterations": args.max_iterations, "tolerance": args.tolerance, "n_bootstrap": args.bootstrap}


def cmd_reweight(args) -> int:
    """Import the windows, reweight them by WHAM or MBAR, write the PMF with its standard errors to ``--out``."""
    check_output(args, args.centers)
    files = sorted({path for pattern in args.series for path in glob.glob(pattern)})
    if not files:
        raise MissingInputError(f"no files match {' '.join(args.series)}")
    column = int(args.column) if args.column.isdigit() else args.column
    windows = import_windows(args.centers, files, kappa_units=args.kappa_units, kappa=args.kappa,
                             temperature=args.temperature, cv_units=args.cv_units, period=args.period, column=column)
    fitted = reweight_windows(windows, args.estimator, seed=args.seed, bins=args.bins, **solver_options(args))
    dataset = pmf_store(windows, fitted)
    dataset.attrs.update(provenance(
        f"umbrella data from {len(files)} files: {args.estimator.upper()} PMF",
        recipe_parameters(args), command_line(args)))
    path = write_zarr(dataset, args.out, overwrite=args.overwrite)
    pmf = fitted.pmf_
    print(f"wrote {path}: {dataset.sizes['window']} windows, {dataset.sizes['sample']} samples; PMF in "
          f"[{float(pmf.cv[0]):.4g}, {float(pmf.cv[-1]):.4g}], max {float(pmf.pmf.max()):.2f} kT "
          f"(± {float(pmf.pmf_stderr.max()):.2f}); {fitted.uncertainty_}")
    return 0
