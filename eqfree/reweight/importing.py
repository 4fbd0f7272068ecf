"""Umbrella data from other engines: window centres, spring constants with units, temperature and per-window
CV series from text files, pooled in the layout of :meth:`eqfree.lift.UmbrellaSampling.run`, and reweighted.

Series files: GROMACS ``.xvg`` (``#``/``@`` header lines; ``@ s0 legend`` names columns), PLUMED ``COLVAR``
(``#! FIELDS time cv ...`` names columns; other ``#!`` lines skipped) and plain whitespace columns with
``#`` comments (pymbar's example layout: ``time value``; one column: values only). The column is ``1``
(the second) unless named or numbered. Centres file: one line per series file, ``centre [kappa
[temperature]]`` (pymbar's ``centers.dat``), in the order of the series files sorted naturally (``prod2``
before ``prod10``). Files whose centre and spring constant coincide are walkers of one window.

The bias of window k at CV value ξ is U_k = κ_k/2 d(ξ, z_k)² (d wrapped when periodic), reduced by
β = 1/(k_B T): u_k = βU_k in kT, with κ converted to the CV's units (``deg`` series with a κ per rad²:
κ·(π/180)²).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError, MissingInputError
from ..periodic import check_period, wrapped_difference
from ..seeding import SeedLike
from .cells import compress
from .common import UmbrellaReweighting, histogram_edges
from .mbar import MBAR
from .uncertainty import MIN_WALKERS
from .wham import WHAM

#: Boltzmann's constant per mole, in each energy unit per kelvin (CODATA 2018)
BOLTZMANN = {"kJ/mol": 0.0083144626, "kcal/mol": 0.0019872043}
#: lengths of each CV unit in its family's base unit
CV_UNITS = {"rad": ("angle", 1.0), "deg": ("angle", math.pi / 180), "nm": ("length", 1.0), "A": ("length", 0.1),
            "1": ("number", 1.0)}


def kappa_in_kt(kappa, units: str, temperature: float | None, cv_units: str | None) -> tuple[np.ndarray, float]:
    """(βκ in kT per CV unit², β in 1/energy) from κ in ``units`` (``ENERGY/CV^2``: ``kJ/mol/rad^2``,
    ``kcal/mol/deg^2``, ``kT/nm^2``, ``kT/1``...), the ``temperature`` in K (not for kT) and the CV's units
    (default: those of κ)."""
    match = re.fullmatch(r"\s*(kJ/mol|kcal/mol|kT)\s*/\s*([A-Za-z1]+)\s*(\^?2)?\s*", units)
    if match is None or match[2] not in CV_UNITS:
        raise InputError(f"kappa units {units!r} not understood: give ENERGY/CV^2 with ENERGY one of kJ/mol, "
                         f"kcal/mol, kT and CV one of {', '.join(CV_UNITS)} (e.g. kJ/mol/rad^2)")
    energy, per = match[1], match[2]
    cv_units = per if cv_units is None else cv_units
    if cv_units not in CV_UNITS or CV_UNITS[cv_units][0] != CV_UNITS[per][0]:
        raise InputError(f"the CV's units {cv_units!r} do not convert to those of kappa ({per}): "
                         f"use one of {[u for u, (family, _) in CV_UNITS.items() if family == CV_UNITS[per][0]]}")
    if energy == "kT":
        beta = 1.0
    else:
        if temperature is None or not (math.isfinite(temperature) and temperature > 0):
            raise InputError(f"kappa in {energy} needs the temperature in K (e.g. --temperature 300), "
                             f"got {temperature!r}")
        beta = 1.0 / (BOLTZMANN[energy] * temperature)
    scale = (CV_UNITS[cv_units][1] / CV_UNITS[per][1]) ** 2  # κ per CV unit² = κ per (per)² × (CV unit / per)²
    return beta * np.asarray(kappa, dtype=float) * scale, beta


def natural_sorted(paths) -> list[Path]:
    """Paths sorted with digit runs compared as numbers (``prod2`` before ``prod10``)."""
    def key(path: Path):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]
    return sorted((Path(p) for p in paths), key=key)


def read_series(path, column: int | str = 1) -> tuple[np.ndarray, np.ndarray]:
    """(time, values) of one column of a GROMACS xvg, PLUMED COLVAR or plain text file (module docstring);
    a file of one column gives times 0, 1, ..."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"no series file at {path}")
    names: list[str] = []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if text.startswith("#! FIELDS"):
            names = text.split()[2:]
        elif (legend := re.match(r'@\s*s(\d+)\s+legend\s+"(.*)"', text)) is not None:
            names += [""] * (int(legend[1]) + 2 - len(names))
            names[int(legend[1]) + 1] = legend[2]
        if not text or text[0] in "#@&":
            continue
        try:
            rows.append([float(v) for v in text.split()])
        except ValueError:
            raise InputError(f"{path}, line {number}: not numbers: {text[:60]!r}") from None
    if not rows:
        raise InputError(f"{path} holds no data lines")
    if len({len(r) for r in rows}) != 1:
        raise InputError(f"{path}: the data lines have different numbers of columns")
    data = np.array(rows)
    if data.shape[1] == 1:
        return np.arange(data.shape[0], dtype=float), data[:, 0]
    if isinstance(column, str):
        if column not in names:
            raise InputError(f"{path} has no column named {column!r}; its columns: {names or 'unnamed'}")
        column = names.index(column)
    if not 0 <= column < data.shape[1]:
        raise InputError(f"{path} has {data.shape[1]} columns; column {column} does not exist (0 is the first)")
    return data[:, 0], data[:, column]


def read_centers(path) -> np.ndarray:
    """The rows ``centre [kappa [temperature]]`` of a centres file, shape ``(windows, 1 to 3)``."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"no centres file at {path}")
    rows = [line.split("#")[0].split() for line in path.read_text().splitlines()]
    rows = [r for r in rows if r]
    try:
        table = np.array([[float(v) for v in r] for r in rows])
    except ValueError:
        raise InputError(f"{path}: expected lines 'centre [kappa [temperature]]' of numbers") from None
    if table.ndim != 2 or not 1 <= table.shape[1] <= 3:
        raise InputError(f"{path}: expected lines 'centre [kappa [temperature]]' with the same number of columns")
    return table


def import_windows(centers, series, *, kappa_units: str, kappa: float | None = None, temperature: float | None = None,
                   cv_units: str | None = None, period: float | None = None, column: int | str = 1,
                   cv_name: str = "cv") -> xr.Dataset:
    """Pooled windows in the layout of :meth:`~eqfree.lift.UmbrellaSampling.run`: ``xi``, ``bias`` (βU of
    the own window, kT), ``window_index``, ``walker``, ``frame_time`` per sample; ``n_samples``, ``kappa``
    (βκ, kT per CV unit²) and coordinate ``center`` per window; attrs ``beta`` = 1 and ``cv``, ``period``.

    ``centers``: a centres file or a ``(files, 1–3)`` table; ``series``: the series files (sorted
    naturally); ``kappa``: one spring constant for all (else the table's second column); the temperature
    from ``temperature`` or the table's third column. The CV is wrapped into [−P/2, P/2) when periodic.
    """
    table = read_centers(centers) if isinstance(centers, (str, Path)) else np.atleast_2d(np.asarray(centers, float))
    files = natural_sorted(series)
    if len(files) != len(table):
        raise InputError(f"{len(files)} series files for {len(table)} centres: give one centre per file")
    period = check_period(period)
    if kappa is None:
        if table.shape[1] < 2:
            raise InputError("no spring constants: give kappa, or a second column in the centres file")
        spring = table[:, 1]
    else:
        spring = np.full(len(table), float(kappa))
    if table.shape[1] == 3:
        if temperature is None and np.ptp(table[:, 2]) > 0:
            raise InputError(f"windows at different temperatures ({table[:, 2].min():g}–{table[:, 2].max():g} K) "
                             "need the potential energies: not supported; give one temperature")
        temperature = float(table[0, 2]) if temperature is None else temperature
    reduced, _ = kappa_in_kt(spring, kappa_units, temperature, cv_units)
    if not (np.isfinite(reduced).all() and (reduced > 0).all()):
        raise InputError("spring constants must be finite and positive")
    centre = table[:, 0] if period is None else wrapped_difference(table[:, 0], 0.0, period)

    keys, window_of_file = np.unique(np.stack([centre, reduced], axis=1), axis=0, return_inverse=True)
    window_of_file = window_of_file.ravel()
    first = np.array([np.flatnonzero(window_of_file == k)[0] for k in range(len(keys))])
    renumber = np.argsort(np.argsort(first))  # windows in order of first appearance
    window_of_file = renumber[window_of_file]
    columns = {"xi": [], "window_index": [], "walker": [], "frame_time": []}
    for k in range(len(keys)):
        for walker, index in enumerate(np.flatnonzero(window_of_file == k)):
            time, values = read_series(files[index], column)
            if not np.isfinite(values).all():
                raise InputError(f"{files[index]} holds non-finite CV values")
            columns["xi"].append(values if period is None else wrapped_difference(values, 0.0, period))
            columns["window_index"].append(np.full(values.size, k))
            columns["walker"].append(np.full(values.size, walker))
            columns["frame_time"].append(time)
    pooled = {name: np.concatenate(parts) for name, parts in columns.items()}
    centres = centre[first[np.argsort(renumber)]]
    kappas = reduced[first[np.argsort(renumber)]]
    own = pooled["window_index"]
    bias = 0.5 * kappas[own] * wrapped_difference(pooled["xi"], centres[own], period) ** 2
    return xr.Dataset(
        {"xi": ("sample", pooled["xi"], {"long_name": f"collective variable {cv_name}"}),
         "bias": ("sample", bias, {"long_name": "reduced bias energy beta*U", "units": "kT"}),
         "window_index": ("sample", own), "walker": ("sample", pooled["walker"]),
         "frame_time": ("sample", pooled["frame_time"]),
         "n_samples": ("window", np.bincount(own, minlength=len(centres))),
         "kappa": ("window", kappas, {"long_name": "reduced spring constant beta*kappa", "units": "kT"})},
        coords={"center": ("window", centres)},
        attrs={"beta": 1.0, "cv": cv_name, **({} if period is None else {"period": period})},
    )


def reduced_bias(windows: xr.Dataset, cv=None) -> np.ndarray:
    """u_k(ξ_n) = βκ_k/2 d(ξ_n, z_k)² in kT, ``(windows, samples)``, of a pooled windows dataset at its samples'
    CV (or at the values ``cv``), with κ per window from its ``kappa`` variable, else its ``kappa`` attribute, and
    β from its ``beta`` attribute. Windows on several CVs (``xi`` and ``center`` with a dimension ``cv``; ``kappa``
    and ``period`` attributes one per CV, NaN where not periodic): u_k = Σ_i βκ_i/2 d(ξ_ni, z_ki)²."""
    if "cv" not in windows["xi"].dims:
        cv = windows.xi.values if cv is None else np.asarray(cv, dtype=float)
        distance = wrapped_difference(cv[None, :], windows.center.values[:, None], windows.attrs.get("period"))
        return 0.5 * stiffness(windows)[:, None] * distance**2
    cv = windows["xi"].transpose("sample", "cv").values if cv is None else np.asarray(cv, dtype=float)
    centers = windows["center"].transpose("window", "cv").values
    beta, kappas = float(windows.attrs["beta"]), np.asarray(windows.attrs["kappa"], dtype=float)
    periods = [None if math.isnan(p) else float(p) for p in np.asarray(windows.attrs["period"], dtype=float)]
    return sum(0.5 * beta * kappa * wrapped_difference(cv[None, :, i], centers[:, None, i], period) ** 2
               for i, (kappa, period) in enumerate(zip(kappas, periods, strict=True)))


def stiffness(windows: xr.Dataset) -> np.ndarray:
    """The reduced spring constants βκ_k of a pooled windows dataset, in kT per squared CV unit, ``(windows,)``."""
    kappa = windows["kappa"].values if "kappa" in windows.data_vars else np.full(windows.sizes["window"],
                                                                                  windows.attrs["kappa"])
    return windows.attrs["beta"] * np.asarray(kappa, dtype=float)


def reweight_windows(windows: xr.Dataset, estimator: str = "mbar", *, seed: SeedLike | None,
                     **options) -> UmbrellaReweighting:
    """WHAM or MBAR fitted to a pooled windows dataset (:func:`import_windows`, or
    :meth:`~eqfree.lift.UmbrellaSampling.run`), bootstrapping whole walkers from ``seed``.

    WHAM with at least :data:`~eqfree.reweight.uncertainty.MIN_WALKERS` walkers in every window runs on the
    samples compressed into cells (:mod:`eqfree.reweight.cells`, exact to a stated bound; its ``pmf_`` attributes
    state the compression, and ``log_weights_``/``cv_`` are the cells'); MBAR (pymbar, one column per sample)
    and WHAM with fewer walkers (a block bootstrap along each walker's series) run on every sample."""
    estimators = {"wham": WHAM, "mbar": MBAR}
    if estimator not in estimators:
        raise InputError(f"estimator must be 'wham' or 'mbar', got {estimator!r}")
    if estimator == "wham" and seed is None:
        raise InputError("WHAM's bootstrap errors need an explicit seed: reweight(windows, 'wham', seed=...)")
    period = check_period(windows.attrs.get("period"))
    fitted = estimators[estimator](period=period, **options)
    window, walker, xi = windows.window_index.values, windows.walker.values, windows.xi.values
    if estimator == "mbar" or not np.isfinite(xi).all() or walkers_per_window(window, walker).min() < MIN_WALKERS:
        return fitted.fit(reduced_bias(windows), window, xi, walker, seed=seed)  # (fit names non-finite CVs)
    edges = histogram_edges(fitted.bins, xi, period)
    cells = compress(xi, window, walker, stiffness(windows), edges, period)
    fitted.set_params(bins=edges)
    fitted.fit(reduced_bias(windows, cells.cv), cells.window, cells.cv, seed=seed, multiplicity=cells.multiplicity)
    fitted.pmf_.attrs.update(cells.attrs)
    return fitted


def walkers_per_window(window: np.ndarray, walker: np.ndarray) -> np.ndarray:
    """The number of distinct walker labels in each window, ``(windows,)``."""
    labels = int(walker.max()) - int(walker.min()) + 1
    present = np.flatnonzero(np.bincount(window * labels + walker - walker.min()))
    return np.bincount(present // labels, minlength=int(window.max()) + 1)


def pmf_store(windows: xr.Dataset, fitted: UmbrellaReweighting) -> xr.Dataset:
    """The windows with the PMF, the window free energies and the overlap matrix: the store of
    ``eqfree umbrella`` and ``eqfree reweight`` (attributes are the caller's)."""
    return xr.merge([
        windows.drop_attrs(),
        fitted.pmf_,
        xr.Dataset({"f": ("window", fitted.f_, {"long_name": "window free energy", "units": "kT"}),
                    "f_stderr": ("window", fitted.f_stderr_, {"units": "kT"}),
                    "overlap": (("window", "window_to"), fitted.overlap_, {"long_name": "overlap matrix"})}),
    ], combine_attrs="drop_conflicts")
