"""Adaptive exploration beyond the training data (Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and
closures: micro-macro consistency in multiscale modeling", end of section 6.2).

From a generator trained on CV values in [a, b], each round

1. extrapolates: lifts at z_r = b + Δ (or a − Δ going down) with the generator, and checks the
   label consistency mean |ξ(G(z_r)) − z_r| against ``tolerance`` (stop when it fails);
2. refines: runs generator-seeded umbrella sampling at z_r (:class:`AssistedUmbrella`), so the
   new states come from the true dynamics;
3. retrains: adds the refined states, labelled by ξ, to the training set and continues training
   (warm start), which moves the edge of the data to about z_r.

It stops at the target ``to``, when label consistency fails, or after ``max_rounds``; every
round is recorded (and written to ``store`` as it ends, so an interrupted run keeps its rounds).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io import provenance, write_zarr
from ..metrics import energy_distance, label_consistency, wasserstein_marginals
from ..operators import Evolve
from ..periodic import wrapped_difference
from ..progress import progress_bar
from ..restrict import collective_variable
from ..seeding import SeedLike, child
from ..validation import checked_count, checked_positive
from .assisted import AssistedUmbrella


class ExplorationStopped(UserWarning):
    """Exploration ended before its target (label consistency failed or the rounds ran out)."""


def explore(generator, X, evolve: Evolve, cv, *, to: float, step: float, kappa: float, n_steps: int,
            n_walkers: int = 10, n_epochs: int = 500, tolerance: float | None = None, max_rounds: int = 20,
            reference=None, n_check: int = 1000, seed: SeedLike, store=None, progress: bool = True) -> xr.Dataset:
    """Extend a trained ``generator`` from its training states ``X`` to the CV value ``to`` (module doc).

    Parameters
    ----------
    generator : a fitted :class:`~eqfree.lift.CcGAN` or :class:`~eqfree.lift.ConditionalScoreModel`
        trained on ``X`` (states of the system ``evolve`` runs) labelled by ``cv``; it is retrained in place.
    step : Δ, the CV distance each round goes beyond the data.
    evolve, kappa, n_steps, n_walkers : the refining umbrella runs (:class:`AssistedUmbrella`).
    n_epochs : training epochs per round (warm start; the generator's own ``n_epochs`` is restored after).
    tolerance : the largest accepted label consistency of the extrapolated states (default: five
        window widths 5/√(βκ)).
    reference : optional ``reference(z, n, seed) -> (n, dim)`` exact conditional samples; each
        round then records the refined states' W1 per coordinate and energy distance to them.

    Returns a Dataset over ``round``: ``z``, ``label_consistency`` (of the extrapolated states),
    ``refined_label_consistency``, ``n_added``, ``train_seconds`` and, with a reference,
    ``w1`` (round, coord) and ``energy``; plus the final refined states ``x`` (sample, coord).
    """
    cv = collective_variable(cv, dim=None if evolve.coords is None else len(evolve.coords))
    step, to = checked_positive(step, "step"), float(to)
    max_rounds, n_check = checked_count(max_rounds, "max_rounds"), checked_count(n_check, "n_check")
    X = np.asarray(X, dtype=float)
    labels = cv(X)
    low, high = float(labels.min()), float(labels.max())
    if low <= to <= high:
        raise InputError(f"to = {to:g} lies inside the training labels [{low:g}, {high:g}]: nothing to explore")
    direction = 1.0 if to > high else -1.0
    tolerance = 5 / math.sqrt(kappa * evolve.beta) if tolerance is None else checked_positive(
        tolerance, "tolerance")
    rounds, refined = [], None
    edge = high if direction > 0 else low
    with progress_bar(progress, total=math.ceil(abs(to - edge) / step), desc="exploring", unit="round") as bar:
        for r in range(max_rounds):
            z = edge + direction * step
            z = min(z, to) if direction > 0 else max(z, to)
            record = {"z": z}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sampling beyond the labels is the point here
                guess = generator.sample(z, n_check, seed=child(seed, r, 0))
            record["label_consistency"] = label_consistency(cv, guess, z, period=cv.period)
            if record["label_consistency"] > tolerance:
                warnings.warn(f"exploration stopped at round {r}: the generator's states at {z:g} miss it by "
                              f"{record['label_consistency']:.3g} on average (> tolerance {tolerance:.3g}); "
                              f"the data now reach {edge:g}", ExplorationStopped, stacklevel=2)
                break
            assisted = AssistedUmbrella(generator, evolve, cv, kappa, n_steps=n_steps, n_walkers=n_walkers,
                                        max_label_error=None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                window = assisted.run(z, seed=child(seed, r, 1))
            refined, xi, _ = assisted.samples(window, thin=False)
            record["refined_label_consistency"] = float(np.abs(wrapped_difference(xi, z, cv.period)).mean())
            record["n_added"] = len(refined)
            if reference is not None:
                exact = np.asarray(reference(z, len(refined), child(seed, r, 2)), dtype=float)
                record["w1"] = wasserstein_marginals(refined, exact)
                record["energy"] = energy_distance(refined, exact, max_samples=2000, seed=child(seed, r, 3))
            X = np.concatenate([X, refined])
            trained_epochs = generator.n_epochs
            generator.set_params(n_epochs=n_epochs)
            try:
                generator.fit(X, cv(X), seed=child(seed, r, 4), warm_start=True, progress=False)
            finally:
                generator.set_params(n_epochs=trained_epochs)
            record["train_seconds"] = generator.training_["seconds"]
            rounds.append(record)
            edge = float(xi.max()) if direction > 0 else float(xi.min())
            edge = z if direction * (edge - z) < 0 else edge
            bar.update(1)
            result = _record(rounds, refined, evolve.coords, to)
            if store is not None:
                write_zarr(result, store, overwrite=True)
            if z == to:
                return result
        else:
            warnings.warn(f"exploration stopped after max_rounds = {max_rounds}: the data reach {edge:g}, "
                          f"short of {to:g}; raise max_rounds or step", ExplorationStopped, stacklevel=2)
    return _record(rounds, refined, evolve.coords, to)


def _record(rounds: list[dict], refined, coords, to: float) -> xr.Dataset:
    """The rounds as a Dataset over ``round``, with the last refined states."""
    data = {name: ("round", [r[name] for r in rounds]) for name in
            ("z", "label_consistency", "refined_label_consistency", "n_added", "train_seconds") if rounds}
    if rounds and "w1" in rounds[0]:
        data["w1"] = (("round", "coord"), np.array([r["w1"] for r in rounds]))
        data["energy"] = ("round", [r["energy"] for r in rounds])
    if refined is not None:
        data["x"] = (("sample", "coord"), refined)
    dataset = xr.Dataset(data, coords={"coord": coords} if coords is not None and refined is not None else None)
    dataset.attrs = provenance("adaptive exploration: extrapolate, refine by assisted umbrella sampling, retrain",
                               {"to": to, "rounds": len(rounds)}, [])
    dataset.attrs["reached"] = bool(rounds) and rounds[-1]["z"] == to
    return dataset
