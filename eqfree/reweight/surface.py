"""The free-energy surface on several CVs from umbrella windows, by MBAR (Shirts & Chodera 2008) through pymbar.

Windows on n CVs (:meth:`eqfree.lift.UmbrellaSampling.run` with a list of CVs: samples ``xi`` (sample, cv), centres
(window, cv), ``kappa`` and ``period`` one per CV) give every sample's reduced bias in every window
(:func:`~eqfree.reweight.reduced_bias`),

    u_k(ξ_n) = Σ_i βκ_i/2 d(ξ_ni, z_ki)²      (d wrapped for a periodic CV),

from which pymbar's MBAR solves the window free energies and ``pymbar.FES`` histograms the unbiased weights on the
bins of a regular grid (one array of edges per CV; samples of a periodic CV are wrapped into its first edge's
period): F_b = −log Σ_{n∈b} W_n − log V_b, reported in kT relative to the lowest populated bin, with pymbar's
analytical (asymptotic) standard errors of F_b − F_ref (samples assumed uncorrelated: the windows' samples are
thinned by their statistical inefficiency). The bins go to pymbar as one flat index (a 1-D histogram over C-order
bin numbers, samples outside the grid in one bin of their own), so each grid bin is its own state whatever the
number of bins per CV. The bin average of exp(−F) differs from the PMF at the bin's centre by O(h²) (h the bin
width): ½ Σ_i (h_i²/12) ∂²_i F-like terms, a bias to state wherever F is compared pointwise.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from .._pymbar import import_pymbar
from ..errors import InputError
from ..periodic import wrap_into
from .importing import reduced_bias


def free_energy_surface(windows: xr.Dataset, edges) -> xr.Dataset:
    """The PMF F(ξ_1, …, ξ_n) in kT on the bins of ``edges`` (one increasing array of bin edges per CV) from pooled
    windows on several CVs (module doc). Returns ``pmf`` and ``pmf_stderr`` (NaN in empty bins) and ``n_samples``
    per bin, dims named after the CVs with the bin centres as coordinates; attrs ``reference`` (the centre of the
    lowest bin, where F = 0) and ``estimator``."""
    if "cv" not in windows["xi"].dims:
        raise InputError("these windows are on one CV (xi has no 'cv' dimension): use reweight_windows for them")
    names = [str(name) for name in windows["cv"].values]
    edges = [np.asarray(e, dtype=float) for e in edges]
    if len(edges) != len(names):
        raise InputError(f"give one array of bin edges per CV ({', '.join(names)}), got {len(edges)}")
    for name, e in zip(names, edges, strict=True):
        if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
            raise InputError(f"the bin edges of {name} must be an increasing 1-D array of at least two values")
    periods = np.asarray(windows.attrs["period"], float)
    xi = windows["xi"].transpose("sample", "cv").values.copy()
    for i, period in enumerate(periods):
        if not math.isnan(period):
            xi[:, i] = wrap_into(xi[:, i], edges[i][0], period)
    shape = tuple(e.size - 1 for e in edges)
    index = [np.digitize(xi[:, i], e) - 1 for i, e in enumerate(edges)]
    inside = np.all([(j >= 0) & (j < n) for j, n in zip(index, shape, strict=True)], axis=0)
    flat = np.full(xi.shape[0], -1)
    flat[inside] = np.ravel_multi_index(tuple(j[inside] for j in index), shape)
    counts = np.bincount(flat[inside], minlength=math.prod(shape))
    filled = np.flatnonzero(counts)
    if filled.size == 0:
        raise InputError("no sample falls inside the bins: widen the edges to the sampled range")
    window = windows["window_index"].values
    order = np.argsort(window, kind="stable")
    n_k = np.bincount(window, minlength=windows.sizes["window"])
    pymbar = import_pymbar()
    volume = np.prod(np.meshgrid(*[np.diff(e) for e in edges], indexing="ij"), axis=0).ravel()
    with threadpool_limits(1, user_api="blas"):
        fes = pymbar.FES(reduced_bias(windows)[:, order], n_k)
        fes.generate_fes(np.zeros(order.size), flat[order][:, None] + 0.5, fes_type="histogram",
                         histogram_parameters={"bin_edges": [np.arange(math.prod(shape) + 1.0)]})
        points = filled[:, None] + 0.5
        first = fes.get_fes(points, reference_point="from-lowest")["f_i"] + np.log(volume[filled])
        lowest = filled[np.argmin(first)]
        result = fes.get_fes(points, reference_point="from-specified", fes_reference=lowest + 0.5,
                             uncertainty_method="analytical")
    pmf, stderr = np.full(math.prod(shape), np.nan), np.full(math.prod(shape), np.nan)
    pmf[filled] = result["f_i"] + np.log(volume[filled] / volume[lowest])
    stderr[filled] = result["df_i"]
    centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
    coords = dict(zip(names, centres, strict=True))
    reference = [float(c[j]) for c, j in zip(centres, np.unravel_index(lowest, shape), strict=True)]
    return xr.Dataset(
        {"pmf": (names, pmf.reshape(shape), {"long_name": "potential of mean force", "units": "kT"}),
         "pmf_stderr": (names, stderr.reshape(shape), {"long_name": "standard error of the PMF", "units": "kT"}),
         "n_samples": (names, counts.reshape(shape), {"long_name": "pooled samples in the bin"})},
        coords=coords, attrs={"reference": reference, "estimator": "MBAR (pymbar FES, histogram)"})
