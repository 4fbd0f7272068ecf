"""Generator-seeded parallel umbrella sampling (Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and
closures: micro-macro consistency in multiscale modeling", section 4.2 and Figure 6).

A trained conditional generator G gives initial states already near the conditional equilibrium
at z, so instead of one long biased run that must first relax, many short runs start from

    x_k(0) = G(z)_k,   k = 1 … n_walkers,

each under the bias U_z = κ/2 d(ξ(x), z)² for ``n_steps`` fine steps. The samples come from the
true dynamics, and the wall-clock time falls by the number of runs that execute side by side.

The biased law of one window is ∝ ν(x) exp(−βU_z(ξ(x))); with a single window WHAM and MBAR both
reduce to the unbiased weights W_n ∝ exp(βU_z(ξ_n)). The lift resamples the pooled states with

    w_n ∝ exp(βU_z(ξ_n)) exp(−d(ξ_n, z)² / (2h²)),

the unbiased law within about h of z (h: ``bandwidth``, by default the window's own width
1/√(βκ)). :meth:`AssistedUmbrella.from_umbrella` seeds the windows of an existing sampler instead
(e.g. umbrella sampling on ψ of an OpenMM molecule).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from ..errors import InputError, InputTypeError
from ..operators import Evolve
from ..parallel import run_tasks
from ..periodic import wrapped_difference
from ..seeding import SeedLike, as_seed_sequence, child
from ..statistics import kish_ess
from ..validation import checked_count, checked_positive
from .generative import ConditionalGenerator
from .umbrella import UmbrellaSampling


class AssistedUmbrella:
    """A :class:`~eqfree.Lift`: ``n_walkers`` short umbrella runs at z seeded by a trained generator.

    Parameters
    ----------
    generator : a trained conditional generator (:class:`~eqfree.lift.CcGAN`,
        :class:`~eqfree.lift.ConditionalScoreModel`, or any Lift) labelled by the same CV.
    evolve, cv, kappa, period : as for :class:`UmbrellaSampling`.
    n_steps : fine steps of each run.
    n_walkers : independent runs (one walker each); they run as tasks on an executor, or vectorized.
    warmup : saved frames to discard from each run (0: the generator's states are already
        equilibrated; ``"auto"`` detects it).
    bandwidth : kernel width h of the lift's weights in CV units (default 1/√(βκ)).
    max_label_error : largest tolerated mean |ξ(G(z)) − z| of the generator's states, in units of
        the window width 1/√(βκ); beyond it the generator is refused as trained on another CV
        (None: no check).
    """

    def __init__(self, generator, evolve: Evolve, cv, kappa: float, *, n_steps: int, n_walkers: int = 10,
                 warmup: int | str = 0, save_every: int = 1, bandwidth: float | None = None,
                 max_label_error: float | None = 10.0, period: float | None = None):
        self.sampler = UmbrellaSampling(evolve, cv, kappa, n_steps=n_steps, initial=generator, warmup=warmup,
                                        n_walkers=checked_count(n_walkers, "n_walkers", 2), save_every=save_every,
                                        period=period)
        if isinstance(generator, ConditionalGenerator):
            generator.check_fitted()
        known = isinstance(generator, ConditionalGenerator) and evolve.coords is not None
        if known and generator.dim_ != len(evolve.coords):
            dim, system_dim = generator.dim_, len(evolve.coords)
            raise InputError(f"the generator was trained on {dim}-dimensional states but the system has {system_dim}: "
                             "train it on this system's states (its `x`, not observed coordinates)")
        self.generator, self.n_walkers = generator, self.sampler.n_walkers
        self.width = 1.0 / math.sqrt(self.sampler.beta * self.sampler.kappa)
        self.bandwidth = self.width if bandwidth is None else checked_positive(bandwidth, "bandwidth")
        self.max_label_error = None if max_label_error is None else checked_positive(max_label_error, "max_label_error")
        self.valid_range = generator.valid_range

    @classmethod
    def from_umbrella(cls, generator, umbrella: UmbrellaSampling, *, n_walkers: int = 10, n_steps: int | None = None,
                      warmup: int | str = 0, bandwidth: float | None = None,
                      max_label_error: float | None = 10.0) -> AssistedUmbrella:
        """Generator-seeded runs of an existing umbrella sampler: its evolver, CV, κ and save interval
        (e.g. ``UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), ...)`` biasing ψ), with ``n_walkers``
        walkers started from ``generator`` and ``n_steps`` each (default: the sampler's); ``umbrella`` is
        left unchanged."""
        if not isinstance(umbrella, UmbrellaSampling):
            raise InputTypeError(f"umbrella must be an UmbrellaSampling (e.g. UmbrellaSampling(system.evolver(), "
                                 f"system.cv('psi'), kappa, ...)), got {type(umbrella).__name__}")
        return cls(generator, umbrella.evolve, umbrella.cv, umbrella.kappa,
                   n_steps=umbrella.n_steps if n_steps is None else n_steps, n_walkers=n_walkers, warmup=warmup,
                   save_every=umbrella.save_every, bandwidth=bandwidth, max_label_error=max_label_error)

    @property
    def cv(self):
        """The umbrella sampler's biased CV ξ (a :class:`~eqfree.Restrict`), whose windows the generator seeds."""
        return self.sampler.cv

    def run(self, z: float, *, seed: SeedLike, executor=None, walkers_per_task: int | None = None,
            progress: bool | None = None) -> xr.Dataset:
        """The ``n_walkers`` biased runs at z as one window: ``x`` (time, walker, coord), ``xi`` and ``bias``
        (βU, kT) per frame, warm-up/inefficiency in attrs, and ``initial_label_error`` (mean
        |ξ(G(z)) − z| of the starting states). Run k draws its start and its noise from ``seed`` and k
        alone, so the numbers do not depend on the executor or on ``walkers_per_task``."""
        z = float(z)
        per_task = (self.n_walkers if executor is None else 1) if walkers_per_task is None else checked_count(
            walkers_per_task, "walkers_per_task")
        tasks = [(self.sampler, z, first, min(per_task, self.n_walkers - first), seed)
                 for first in range(0, self.n_walkers, per_task)]
        pieces = [piece for _, piece in sorted(run_tasks(_runs, tasks, executor=executor, progress=progress,
                                                         desc="assisted umbrella runs"), key=lambda item: item[0])]
        trajectories = xr.concat([run for piece in pieces for run in piece], dim="walker")
        trajectories = trajectories.assign_coords(walker=np.arange(self.n_walkers))
        start = self.sampler.cv(trajectories.values[0])
        label_error = float(np.abs(wrapped_difference(start, z, self.cv.period)).mean())
        if self.max_label_error is not None and label_error > self.max_label_error * self.width:
            raise InputError(
                f"the generator's states at {self.cv.name} = {z:g} lie {label_error:.3g} from it on average "
                f"({label_error / self.width:.1f} window widths 1/sqrt(beta kappa)): was the generator trained "
                f"on this CV ({self.cv.name})? (raise max_label_error to accept poorer starts)")
        analysed = self.sampler.analyse(trajectories, z)
        analysed.attrs["initial_label_error"] = label_error
        return analysed

    def samples(self, window: xr.Dataset, thin: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """States (N, dim), CV values (N,) and reduced bias βU (N,) after warm-up, thinned by the CV's
        statistical inefficiency unless ``thin=False`` (when ξ is held almost still and the fast
        coordinates set the correlation time)."""
        stride = window.attrs["stride"] if thin else 1
        kept = window.isel(time=slice(window.attrs["warmup_frames"], None, stride))
        return (kept.x.values.reshape(-1, kept.sizes["coord"]), kept.xi.values.reshape(-1),
                kept.bias.values.reshape(-1))

    def weights(self, window: xr.Dataset, thin: bool = True) -> np.ndarray:
        """The lift's normalized weights w_n (module doc) of the samples of :meth:`samples`."""
        _, xi, bias = self.samples(window, thin)
        offset = wrapped_difference(xi, window.attrs["center"], self.cv.period)
        log_w = bias - 0.5 * (offset / self.bandwidth) ** 2
        w = np.exp(log_w - log_w.max())
        return w / w.sum()

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states of the unbiased conditional law at z, resampled from the runs (module doc)."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.shape != (1,):
            raise InputError(f"assisted umbrella sampling lifts one CV value at a time, got z of shape {z.shape}")
        window = self.run(z[0], seed=child(seed, 0))
        states, weights = self.samples(window)[0], self.weights(window)
        with np.errstate(divide="ignore"):  # a zero weight is log w = −∞
            effective = kish_ess(np.log(weights))
        if effective < n:
            warnings.warn(f"at z = {z[0]:g} the runs give an effective sample size of {effective:.0f} < n = {n}: "
                          "lifted states repeat; use more walkers or longer runs", UserWarning, stacklevel=2)
        rng = np.random.default_rng(as_seed_sequence(child(seed, 1)))
        return states[rng.choice(len(weights), size=n, p=weights)]


def _runs(sampler: UmbrellaSampling, z: float, first: int, count: int, seed) -> list[xr.DataArray]:
    """Runs ``first … first + count − 1`` at z (a task): one walker each, vectorized together."""
    windows = sampler.windows(np.full(count, z), seed=seed, first=first, n_walkers=1)
    return [w.x for w in windows]
