"""The binless self-consistent equations of umbrella reweighting, solved by Newton's method, for any sample
multiplicities (the bootstrap's resamples).

With K windows, pooled samples n of multiplicity m_n (1 for the data, the number of draws in a resample),
N_k = Σ_{n in window k} m_n and e_kn = exp(−u_k(x_n) + min_j u_j(x_n)) (the per-sample shift cancels), the
window free energies solve

    f_k = −log Σ_n m_n exp(−u_k(x_n)) / Σ_j N_j exp(f_j − u_j(x_n)),     f_0 = 0,

the binless WHAM equations (Souaille & Roux 2001), identical to MBAR's (Shirts & Chodera 2008) for states
that differ by their bias. They are the stationarity conditions of the convex function

    A(f) = Σ_n m_n log Σ_k N_k exp(f_k) e_kn − Σ_k N_k f_k,

with gradient g_k = Σ_n m_n p_kn − N_k and Hessian H = diag(Σ_n m_n p_kn) − P diag(m) Pᵀ, where
p_kn = N_k exp(f_k) e_kn / Σ_j N_j exp(f_j) e_jn. Newton steps on f_1..f_{K−1}, halved until A decreases,
converge quadratically. The residual is the change of the self-consistent update, max_k |Δf_k − Δf_0| in
kT, as binned WHAM reports it.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logsumexp

from ..errors import ConvergenceError, InputError

#: a run that misses ``tolerance`` by at most this factor is kept, with a warning
CLOSE_ENOUGH = 100.0


class BinlessEquations:
    """The bias factors e_kn of pooled samples, for solving the equations at any multiplicities."""

    def __init__(self, u: np.ndarray, window: np.ndarray):
        self.shift = u.min(axis=0)
        excess = u - self.shift
        # each column's largest entry is 1; entries below e^−345 ≈ 1e−150 are set to 0, so that no product of
        # two is subnormal (subnormal arithmetic is ~100x slower) — they change no sum by more than 1e−150
        self.factors = np.where(excess < 345.0, np.exp(-np.minimum(excess, 345.0)), 0.0)  # (K, N)
        self.window = window
        self.n_windows = u.shape[0]

    def counts(self, multiplicity: np.ndarray) -> np.ndarray:
        """N_k = Σ_{n in window k} m_n, the samples per window weighted by their ``multiplicity`` m_n, ``(K,)``."""
        return np.bincount(self.window, weights=multiplicity, minlength=self.n_windows)

    def _terms(self, f, multiplicity, n_k):
        """(a_k = N_k exp(f_k − max f), D_n = Σ_k a_k e_kn, objective A up to a constant)."""
        a = n_k * np.exp(f - f.max())
        denominator = a @ self.factors
        if not (denominator > 0).all():
            raise InputError("the bias factors underflowed: the window free energies span more than floating "
                             "point can hold; restrict the CV range or the bias strengths")
        return a, denominator, multiplicity @ np.log(denominator) + f.max() * multiplicity.sum() - n_k @ f

    def log_weights(self, f: np.ndarray, multiplicity: np.ndarray) -> np.ndarray:
        """log W_n of the unbiased law (−∞ for a sample left out), normalized so that Σ_n W_n = 1."""
        _, denominator, _ = self._terms(f, multiplicity, self.counts(multiplicity))
        with np.errstate(divide="ignore"):
            log_w = np.log(multiplicity) - np.log(denominator) + self.shift
        return log_w - logsumexp(log_w)

    def residual(self, f: np.ndarray, multiplicity: np.ndarray) -> float:
        """max_k |Δf_k − Δf_0| of one self-consistent update from ``f``, in kT."""
        n_k = self.counts(multiplicity)
        a, denominator, _ = self._terms(f, multiplicity, n_k)
        change = -np.log(a * (self.factors @ (multiplicity / denominator)) / n_k)
        return float(np.max(np.abs(change - change[0])))

    def solve(self, multiplicity: np.ndarray, start: np.ndarray, *, tolerance: float,
              max_iterations: int) -> tuple[np.ndarray, float, int]:
        """(f with f_0 = 0, residual, Newton iterations) from ``start``; see the module docstring.

        Missing ``tolerance`` after ``max_iterations`` by at most ``CLOSE_ENOUGH`` times gives a warning and
        the result; by more, a :class:`~eqfree.errors.ConvergenceError`.
        """
        n_k = self.counts(multiplicity)
        f = start - start[0]
        a, denominator, objective = self._terms(f, multiplicity, n_k)
        residual = np.inf
        for iteration in range(max_iterations + 1):
            weighted = multiplicity / denominator
            gathered = a * (self.factors @ weighted)  # Σ_n m_n p_kn
            change = -np.log(gathered / n_k)
            residual = float(np.max(np.abs(change - change[0])))
            if residual < tolerance or iteration == max_iterations:
                break
            q = self.factors * a[:, None]
            q *= np.sqrt(multiplicity) / denominator  # √m_n p_kn, (K, N)
            hessian = np.diag(gathered) - q @ q.T
            gradient = gathered - n_k
            step = np.zeros_like(f)
            step[1:] = np.linalg.lstsq(hessian[1:, 1:], -gradient[1:], rcond=None)[0]
            length = 1.0
            while True:
                trial = f + length * step
                a_t, denominator_t, objective_t = self._terms(trial, multiplicity, n_k)
                if objective_t <= objective + 1e-12 * abs(objective) or length < 1e-8:
                    break
                length /= 2
            f, a, denominator, objective = trial, a_t, denominator_t, objective_t
        if residual >= tolerance:
            message = (f"the reweighting equations reached a residual of {residual:.3g} kT in {max_iterations} "
                       f"iterations, above the tolerance {tolerance:g}")
            if residual > CLOSE_ENOUGH * tolerance:
                raise ConvergenceError(f"{message}: raise max_iterations or tolerance, or check that "
                                       "neighbouring windows overlap")
            warnings.warn(f"{message} (by less than {CLOSE_ENOUGH:g}x): the result is kept", UserWarning,
                          stacklevel=6)  # solve <- _solve <- _fit_serial <- _fit <- fit <- the caller
        return f, residual, iteration
