"""Coarse continuation on the stochastic coarse time-stepper: what a branch point costs, and what common random
numbers buy.

    python benchmarks/continuation.py [--quick]

1. Fine steps per converged branch point (walkers included), for the pitchfork of ``averaging_cubic`` at the
   settings of `eqfree continue` (1000 walkers, bursts of 100 fine steps, step 0.1, seed 7), the S-shaped
   system (500 walkers) and the Schlögl model by SSA bursts (1000 walkers, τ = 0.1; its "fine steps" are
   save intervals dt = 0.01 of the SSA, 10 per burst, not reaction events). Floor: one burst drift
   evaluation (100 fine steps × walkers for the SDE systems); the ratio, burst evaluations per branch
   point, is printed. The fine steps per point leave out the first point's Newton solve.
2. Noise that common random numbers remove from a directional derivative: per walker, the variance of
   [F_r(z + h) − F_r(z − h)]/2h with the same seed for both bursts, against independent seeds
   (2 Var(F_r)/(2h)² in theory), on averaging_cubic at z = 0.6, λ = 1, for h = 0.1, 0.03, 0.01.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.coarse import BurstDrift, continuation


def sde_family(name):
    def family(lam):
        system = systems.get(name, lam=lam)
        return CoarseTimeStepper(system.exact_lift(system.dt), system.evolver(), Coordinates("x1", system.dim))

    return family


def schlogl_family(b):
    system = systems.get("schlogl", b=b)
    return CoarseTimeStepper(system.exact_lift(), system.evolver(), Coordinates("x1", 1))


def cost(label, drift, *args, **kwargs):
    start, bursts = time.perf_counter(), drift.n_bursts
    branch = continuation(drift, *args, **kwargs)
    seconds = time.perf_counter() - start
    points = branch.sizes["point"]
    evaluations = (drift.n_bursts - bursts) / points
    folds = [round(p[branch.attrs["parameter"]], 4) for p in branch.attrs["special_points"] if p["kind"] == "fold"]
    print(f"{label:28s} {points:4d} points  {evaluations:6.1f} burst evaluations per point  "
          f"{branch.fine_steps.sum() / points:12.4g} fine steps per point  {seconds / points:6.2f} s per point  "
          f"folds {folds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer walkers")
    args = parser.parse_args()
    walkers = 200 if args.quick else 1000
    print("1. cost of a converged branch point (the ratio to one burst drift evaluation is the burst count)")
    cost("pitchfork (averaging_cubic)", BurstDrift(sde_family("averaging_cubic"), tau=1e-2, n_walkers=walkers),
         1.2, 1.5, -0.5, seed=7)
    cost("S-shaped", BurstDrift(sde_family("s_shaped"), tau=1e-2, n_walkers=walkers // 2), -1.4, -1.0, 1.0, seed=21)
    cost("Schlögl (SSA bursts)", BurstDrift(schlogl_family, tau=0.1, n_walkers=walkers), 0.15, 0.3, 0.7, seed=11,
         parameter="b")
    print(f"   one burst drift evaluation: {walkers * 100} fine steps for the SDE systems (100 steps x {walkers} "
          "walkers)")

    print("2. directional derivative noise per walker: independent seeds / common random numbers")
    drift = BurstDrift(sde_family("averaging_cubic"), tau=1e-2, n_walkers=4000 if not args.quick else 1000)
    u, e = np.array([0.6, 1.0]), np.array([1.0, 0.0])
    spread = drift.samples(u, 1).var(ddof=1)
    for h in (0.1, 0.03, 0.01):
        common = drift.directional_samples(u, e, h, 1).var(ddof=1)
        independent = ((drift.samples(u + h * e, 2) - drift.samples(u - h * e, 3)) / (2 * h)).var(ddof=1)
        print(f"   h = {h:5.2f}: variance {independent:10.4g} (theory {2 * spread / (2 * h) ** 2:10.4g}) vs "
              f"{common:8.4g} with common random numbers: ratio {independent / common:8.1f}")


if __name__ == "__main__":
    main()
