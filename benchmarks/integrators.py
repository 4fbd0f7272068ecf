"""Accuracy beside cost of the SDE schemes: the default (Leimkuhler–Matthews) against the previous default
(Euler–Maruyama), and MALA, on the double well.

1. Invariant measure: the error of ⟨x1²⟩ and P(x1 < 0) under each scheme's invariant law at step dt, from
   its transfer operator (``DoubleWell.scheme_moments``; no sampling noise), against quadrature, with the
   fitted order; beside it each scheme's cost in walker-steps per second (1e4 walkers, one thread) and
   MALA's acceptance.
2. The umbrella command of issue 19 at the default dt (``eqfree umbrella --system double_well --cv x1
   --grid=-3.5:3.5:25 --kappa 20 --steps 20000 --walkers 64 --seed 3``), its sampling run through the
   same API call as the CLI with each scheme: sampling wall time, and the PMF's largest error against the
   exact PMF (−log of the x1 marginal averaged over each bin, both zeroed at the exact minimum bin, over
   bins below 8 kT). The PMF is binless WHAM's with 2 bootstrap resamples: its point estimate solves
   MBAR's equations (the CLI's default) to the solver's tolerance, the resamples only give standard
   errors, and MBAR's K × N matrices (4e6 samples here) need more memory than a shared machine spares.

Usage: python benchmarks/integrators.py [--quick] [--skip-umbrella]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from scipy import integrate

from eqfree import systems
from eqfree.lift import UmbrellaSampling
from eqfree.seeding import child

SCHEMES = ("euler_maruyama", "leimkuhler_matthews", "mala")


def invariant_measure_table(well, dts) -> None:
    exact = {"mean_square": well.mean_square(), "prob_left": well.prob_left()}
    print(f"double well, beta = 1: exact <x1^2> = {exact['mean_square']:.6f}, P(x1 < 0) = {exact['prob_left']:.6f}")
    print(f"{'dt':>6} {'EM err <x1^2>':>14} {'LM err <x1^2>':>14} {'ratio':>7} {'EM err P':>10} {'LM err P':>10}")
    errors = {scheme: [] for scheme in SCHEMES[:2]}
    for dt in dts:
        row = {scheme: well.scheme_moments(dt, scheme) for scheme in SCHEMES[:2]}
        for scheme in row:
            errors[scheme].append([row[scheme][key] - exact[key] for key in ("mean_square", "prob_left")])
        em, lm = errors["euler_maruyama"][-1], errors["leimkuhler_matthews"][-1]
        print(f"{dt:6.3f} {em[0]:+14.3e} {lm[0]:+14.3e} {abs(em[0] / lm[0]):7.0f} {em[1]:+10.2e} {lm[1]:+10.2e}")
    for scheme, values in errors.items():
        values = np.abs(np.array(values))
        orders = [np.polyfit(np.log(dts), np.log(values[:, k]), 1)[0] for k in range(2)]
        print(f"fitted order of {scheme}: {orders[0]:.2f} on <x1^2>, {orders[1]:.2f} on P(x1 < 0)")


def cost_table(well, walkers: int, steps: int, repeats: int) -> None:
    x0 = np.tile(well.x0, (walkers, 1))
    rates = {}
    for scheme in SCHEMES:
        times, attrs = [], {}
        well.simulate(walkers, 5, seed=0, x0=x0, scheme=scheme)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            attrs = well.simulate(walkers, steps, seed=1, x0=x0, scheme=scheme, save_every=steps).attrs
            times.append(time.perf_counter() - start)
        rates[scheme] = walkers * steps / min(times)
        extra = f", acceptance {attrs['acceptance']:.3f} at dt = {well.dt:g}" if "acceptance" in attrs else ""
        print(f"cost of {scheme}: {rates[scheme]:.3g} walker-steps/s ({walkers} walkers, best of {repeats}){extra}")
    print(f"cost ratio default/previous default: {rates['euler_maruyama'] / rates['leimkuhler_matthews']:.2f} "
          "(time per step, LM over EM)")


def exact_pmf(well, edges) -> np.ndarray:
    shift = well.potential(well.x0)
    density = lambda x1: math.exp(-well.beta * (well.potential(np.array([x1, 0.0])) - shift))
    mass = np.array([integrate.quad(density, a, b)[0] / (b - a) for a, b in zip(edges[:-1], edges[1:])])
    return -np.log(mass)


def umbrella_command(well, scheme: str, steps: int, walkers: int) -> tuple[float, float, int]:
    """The sampling of ``eqfree umbrella ... --seed 3`` with ``scheme``, its PMF at 100 bins (module doc):
    (sampling wall seconds, max |PMF error| in kT over bins below 8 kT, their number)."""
    start = time.perf_counter()
    sampler = UmbrellaSampling(well.evolver(well.dt, scheme=scheme), "x1", 20.0, n_steps=steps, n_walkers=walkers,
                               initial=well.x0)
    windows = sampler.run(np.linspace(-3.5, 3.5, 25), seed=3, save_states=False)
    wall = time.perf_counter() - start
    pmf = sampler.reweight(windows, "wham", bins=100, seed=child(3, 2), n_bootstrap=2).pmf_
    widths = pmf.bin_width.values
    edges = np.concatenate([pmf.cv.values - widths / 2, [pmf.cv.values[-1] + widths[-1] / 2]])
    exact = exact_pmf(well, edges)
    error = pmf.pmf.values - exact
    error -= error[np.argmin(exact)]
    exact -= exact.min()
    low = (exact < 8) & np.isfinite(error)
    return wall, float(np.abs(error[low]).max()), int(low.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script runs")
    parser.add_argument("--skip-umbrella", action="store_true", help="only the invariant-measure and cost tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    well = systems.get("double_well")
    invariant_measure_table(well, [0.02, 0.04] if args.quick else [0.005, 0.01, 0.02, 0.04])
    cost_table(well, 1000 if args.quick else 10_000, 50 if args.quick else 500, 1 if args.quick else 3)
    if args.skip_umbrella:
        return
    steps, walkers = (400, 8) if args.quick else (20_000, 64)
    print(f"umbrella command (25 windows, kappa 20, {steps} steps, {walkers} walkers, dt = {well.dt:g}, seed 3):")
    for scheme in ("euler_maruyama", "leimkuhler_matthews"):
        wall, worst, points = umbrella_command(well, scheme, steps, walkers)
        print(f"  {scheme:20s} sampling {wall:7.1f} s, PMF max error {worst:.3f} kT over {points} bins")


if __name__ == "__main__":
    main()
