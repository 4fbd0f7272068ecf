"""Warm-up detection and decorrelation of ensemble time series (Chodera 2016).

For a stationary series x_t, t = 0..T−1, of W independent walkers (shape ``(time,)`` or
``(time, walker)``), the statistical inefficiency is

    g = 1 + 2 Σ_{t=1}^{t*−1} (1 − t/T) C(t),   C(t) = Σ_w Σ_s δx_{s,w} δx_{s+t,w} / (W (T − t) σ²)

with δx the deviation from the mean pooled over walkers and σ² the pooled variance. The sum stops
at the first lag t* > t_min where C(t*) ≤ 0 (t_min = 3 for one series, 10 for several, the rules of
pymbar's ``statistical_inefficiency`` and ``statistical_inefficiency_multiple``), and g ≥ 1.
C is computed for all lags at once by FFT.

Warm-up: the start t0 maximizing the effective sample number N_eff(t0) = W (T − t0) / g(t0), g of
the tail x_{t0:} (``detect_equilibration``). Candidates t0 lie on the grid 0, s, 2s, ... (s =
``nskip``, default ⌈T/100⌉, so at most ~100 FFTs) and keep at least :data:`MIN_LENGTH` samples.

``method="eqfree"`` (default) computes g by FFT; ``method="pymbar"`` calls pymbar's ``timeseries``.
Both give the same g to round-off (tested), but pymbar's ``statistical_inefficiency_multiple``
loops over lags in Python: ~180x slower on 500 walkers × 200 frames (16 s against 0.09 s),
which would dominate an umbrella window.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import fft

from ._pymbar import import_pymbar
from .errors import InputError
from .validation import checked_count

#: shortest series (per walker) whose inefficiency is estimated
MIN_LENGTH = 3

METHODS = ("eqfree", "pymbar")


class Warmup(NamedTuple):
    """A warm-up analysis: the first kept frame, the statistical inefficiency g of the rest, and the effective
    number of independent samples left."""

    start: int
    inefficiency: float
    n_effective: float


def statistical_inefficiency(series, *, method: str = "eqfree") -> float:
    """g of a stationary ``(time,)`` or ``(time, walker)`` series (walkers pooled)."""
    x = _as_series(series)
    if not np.ptp(x) > 0:
        raise InputError("series is constant: its statistical inefficiency is undefined")
    return _inefficiency(x, series_is_1d=np.ndim(series) == 1, method=_resolve(method))


def detect_warmup(series, *, nskip: int | None = None, method: str = "eqfree") -> Warmup:
    """The start t0 maximizing N_eff(t0) = W (T − t0)/g(t0), with g(t0) and N_eff(t0) there."""
    x = _as_series(series)
    length = x.shape[0]
    nskip = math.ceil(length / 100) if nskip is None else checked_count(nskip, "nskip")
    method = _resolve(method)
    best = Warmup(-1, math.nan, -math.inf)
    for start in range(0, length - MIN_LENGTH + 1, nskip):
        tail = x[start:]
        if not np.ptp(tail) > 0:  # a constant tail carries no information
            continue
        g = _inefficiency(tail, series_is_1d=np.ndim(series) == 1, method=method)
        n_effective = tail.size / g
        if n_effective > best.n_effective:
            best = Warmup(start, g, n_effective)
    if best.start < 0:
        raise InputError("series is constant: no warm-up can be detected")
    return best


def mser_warmup(series) -> int:
    """Warm-up length by the marginal standard error rule (MSER, White 1997) on the walker mean m_t:

        d* = argmin_{d < T/2} Σ_{t ≥ d} (m_t − m̄_d)² / (T − d)²,

    the start that minimizes the squared standard error of the remaining mean. With W walkers
    relaxing together, m_t has √W less noise than one walker, so a common transient stands out.
    Unlike :func:`detect_warmup`, MSER needs no autocorrelation cut-off, which a transient can
    fool (its early deviations make C(t) turn negative at short lags). A minimum in the second
    half would mean the run never settled; the search stops at T/2 and the caller should warn
    when the result lies near it.
    """
    x = _as_series(series)
    mean = x.mean(axis=1)
    remaining = np.arange(len(mean), 0, -1)
    tail_sum = np.cumsum(mean[::-1])[::-1]
    tail_squares = np.cumsum((mean**2)[::-1])[::-1]
    statistic = (tail_squares - tail_sum**2 / remaining) / remaining**2
    return int(np.argmin(statistic[: len(mean) // 2]))


def decorrelate(series, warmup: Warmup | None = None, *, nskip: int | None = None,
                method: str = "eqfree") -> np.ndarray:
    """Time indices t0, t0 + s, t0 + 2s, ... with s = ⌈g⌉ (pymbar's conservative subsampling).

    ``warmup`` defaults to :func:`detect_warmup` of ``series``; the indices apply to every walker.
    """
    x = _as_series(series)
    if warmup is None:
        warmup = detect_warmup(series, nskip=nskip, method=method)
    start, g = int(warmup.start), float(warmup.inefficiency)
    if not 0 <= start < x.shape[0]:
        raise InputError(f"warm-up start {start} lies outside the series of length {x.shape[0]}")
    if not (math.isfinite(g) and g >= 1):
        raise InputError(f"inefficiency must be a finite number >= 1, got {g}")
    return np.arange(start, x.shape[0], math.ceil(g))


def _as_series(series) -> np.ndarray:
    """``(time, walker)`` float64 view of a ``(time,)`` or ``(time, walker)`` series, checked."""
    x = np.asarray(series, dtype=float)
    if x.ndim not in (1, 2):
        raise InputError(f"series must have shape (time,) or (time, walker), got {x.shape}")
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] < MIN_LENGTH or x.shape[1] < 1:
        raise InputError(f"series needs at least {MIN_LENGTH} time points and one walker, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("series contains NaN or infinite values: drop or repair those samples first")
    return x


def _resolve(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _inefficiency(x: np.ndarray, *, series_is_1d: bool, method: str) -> float:
    if method == "pymbar":
        timeseries = import_pymbar().timeseries
        if series_is_1d:
            return float(timeseries.statistical_inefficiency(x[:, 0]))
        return float(timeseries.statistical_inefficiency_multiple(np.ascontiguousarray(x.T)))
    return _fft_inefficiency(x, min_lag=3 if series_is_1d else 10)


def _fft_inefficiency(x: np.ndarray, min_lag: int) -> float:
    length, walkers = x.shape
    dx = x - x.mean()
    n = fft.next_fast_len(2 * length, real=True)
    power = np.abs(fft.rfft(dx, n, axis=0)) ** 2
    lagged = fft.irfft(power, n, axis=0)[:length].sum(axis=1)  # Σ_w Σ_s δx_s δx_{s+t}
    lags = np.arange(1, length - 1)
    correlation = lagged[1 : length - 1] / (walkers * (length - lags)) / (lagged[0] / (walkers * length))
    stop = np.flatnonzero((correlation <= 0) & (lags > min_lag))
    kept = slice(0, stop[0] if stop.size else lags.size)
    g = 1 + 2 * np.sum(correlation[kept] * (1 - lags[kept] / length))
    return float(max(g, 1.0))
