"""Umbrella sampling as a lift of the *unbiased* conditional law ν_z.

Pooled window samples x_n with unbiased weights W_n (WHAM or MBAR) give, for any z, the weights

    w_n(z) ∝ W_n exp(−d(ξ(x_n), z)² / (2h²)),

whose weighted law is ν_ξ averaged over ξ within about h of z (a bias O(h²) in smooth
observables). Lifting resamples n states from them; the Kish effective sample size
(Σw)²/Σw² says how many distinct states stand behind the draw.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..errors import InputError
from ..reweight import UmbrellaReweighting
from ..seeding import SeedLike, as_seed_sequence
from ..statistics import kish_ess


class ReweightedUmbrella:
    """A :class:`~eqfree.Lift` resampling pooled umbrella ``windows`` with the unbiased weights of a
    fitted ``estimator`` within CV ``bandwidth`` h of z."""

    def __init__(self, windows: xr.Dataset, estimator: UmbrellaReweighting, bandwidth: float):
        if not estimator.is_fitted:
            raise InputError("the estimator is not fitted: pass UmbrellaSampling.reweight(windows, ...)")
        if "x" not in windows:
            raise InputError("the windows hold no states to lift: run them with save_states=True (--save-states)")
        if len(estimator.log_weights_) != windows.sizes["sample"]:
            raise InputError(f"the estimator has {len(estimator.log_weights_)} weights, the windows hold "
                             f"{windows.sizes['sample']} samples: lift from an MBAR fit (a WHAM fit on many walkers "
                             "weighs compressed cells, not samples)")
        self.states = windows.x.values
        self.estimator, self.bandwidth = estimator, bandwidth
        self.valid_range = (float(windows.xi.min()), float(windows.xi.max()))

    def weights(self, z: float) -> np.ndarray:
        """w_n(z), normalized, in the order of the pooled samples."""
        return self.estimator.conditional_weights(float(z), self.bandwidth)

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.shape != (1,):
            raise InputError(f"umbrella sampling lifts one CV value at a time, got z of shape {z.shape}")
        weights = self.weights(z[0])
        with np.errstate(divide="ignore"):  # a zero weight is log w = −∞
            effective = kish_ess(np.log(weights))
        if effective < n:
            warnings.warn(f"at z = {z[0]:g} the weights have an effective sample size of {effective:.0f} < n = {n}: "
                          "lifted states repeat; run more windows or walkers near z, or widen the bandwidth",
                          UserWarning, stacklevel=2)
        rng = np.random.default_rng(as_seed_sequence(seed))
        return self.states[rng.choice(len(weights), size=n, p=weights)]
