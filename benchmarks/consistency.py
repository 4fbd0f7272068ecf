"""Cost of eqfree.testing's calibrated checks at their documented sample sizes (docs/consistency.md).

    python benchmarks/consistency.py [--threads 2] [--quick]

1. The two-sample test: the sliced energy distance with 999 permutations (the default for a 5-point
   grid at α = 0.05) on n = m = 4000 points in 1-D and 2-D, against the peer loop — scipy.stats.energy_distance
   called once per relabelling (1-D) — measured in the same run.
2. Each check on its documented case (n = 4000 for the lift check and for two lifts, 2000 for the
   Markov check), against its floor: the fine simulation it cannot avoid (the same
   bursts run bare through the evolver), so the ratio is the testing overhead.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from machine import cpu_model
from scipy import stats

from eqfree import Coordinates, systems
from eqfree.testing import check_lift, check_lifts_agree, check_markov, two_sample_test


def timed(fn, repeats: int = 1) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller samples (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = 1000 if args.quick else 4000
    print(f"machine: {cpu_model()}, {args.threads} threads; n = {n}")
    rng = np.random.default_rng(0)

    # 1. the two-sample test against the per-permutation scipy loop
    x, y = rng.normal(size=n), rng.normal(size=n)
    ours = timed(lambda: two_sample_test(x, y, n_permutations=999, seed=1), 3)
    pooled = np.concatenate([x, y])

    def scipy_loop():
        for _ in range(1000):
            order = rng.permutation(2 * n)
            stats.energy_distance(pooled[order[:n]], pooled[order[n:]])
    peer = timed(scipy_loop)
    print(f"two-sample test 1-D, 999 permutations: {ours:.3f} s; scipy.stats.energy_distance loop {peer:.3f} s "
          f"(ratio {peer / ours:.1f}x)")
    planar = timed(lambda: two_sample_test(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), n_permutations=999,
                                           seed=1), 3)
    print(f"two-sample test 2-D (4 directions), 999 permutations: {planar:.3f} s")

    # 2. the checks against their simulation floor
    grid = np.linspace(-1, 1, 5)
    cubic = systems.get("averaging_cubic")
    lift, evolve = cubic.exact_lift(cubic.dt), cubic.evolver()
    check = timed(lambda: check_lift(lift, evolve, "x1", grid, n_steps=100, n_samples=n, seed=1))
    floor = timed(lambda: [evolve(lift(np.array([z]), n, seed=1), 100, seed=2, save_every=100) for z in grid])
    print(f"check_lift (averaging_cubic, 5 points, n = {n}, 100 healing steps): {check:.2f} s; "
          f"bursts alone {floor:.2f} s (overhead {check / floor:.1f}x)")

    oscillator = systems.get("two_slow", eps=0.05)
    m = n // 2
    lift, evolve, cv = oscillator.exact_lift(oscillator.dt), oscillator.evolver(), Coordinates("x1")
    steps = round(1.0 / oscillator.dt)
    check = timed(lambda: check_markov(lift, evolve, cv, grid, tau=1.0, n_samples=m, seed=1))
    floor = timed(lambda: [evolve(lift(np.array([z]), m, seed=1), 4 * steps, seed=2, save_every=4 * steps)
                           for z in grid])
    print(f"check_markov (two_slow, 5 points, n = {m}, tau = 1): {check:.2f} s; bursts alone {floor:.2f} s "
          f"(overhead {check / floor:.1f}x, mostly the {m} one-state re-lifts per point)")

    check = timed(lambda: check_lifts_agree(cubic.exact_lift(cubic.dt), cubic.exact_lift(cubic.dt), grid,
                                            n_samples=n, seed=1))
    print(f"check_lifts_agree (two exact lifts, 5 points, n = {n}): {check:.2f} s")


if __name__ == "__main__":
    main()
