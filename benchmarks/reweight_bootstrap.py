"""WHAM's bootstrap against pymbar's on the same data (issue 20, item 2), and the PMF agreement.

    python benchmarks/reweight_bootstrap.py [--windows 25] [--samples 2000] [--bootstrap 100] [--threads 1]

Exact umbrella samples of the double well F(x) = x⁴/4 − 3x² + x (κ = 15, inverse-CDF draws, 10 walkers
per window): eqfree's binless WHAM with ``n_bootstrap`` resamples of whole walkers against
``pymbar.MBAR(..., n_bootstraps=n)`` followed by its bootstrap free-energy differences (pymbar resamples
single samples). Prints both times and their ratio (pymbar / eqfree; ≥ 1 is the target). BLAS runs on
``--threads`` threads for both (threadpoolctl): on a loaded machine two-thread BLAS matrix-vector products
are ~30x slower than one-thread ones.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
from machine import record

from eqfree._pymbar import import_pymbar
from eqfree.reweight import WHAM


def exact_samples(n_windows: int, n_per_window: int, seed: int):
    rng = np.random.default_rng(seed)
    grid = np.linspace(-6, 6, 60_001)
    centres = np.linspace(-3.5, 3.5, n_windows)
    kappa = 15.0
    log_p = -(grid**4 / 4 - 3 * grid**2 + grid)[None, :] - 0.5 * kappa * (grid[None, :] - centres[:, None]) ** 2
    density = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    cdf = np.cumsum(density, axis=1)
    x = np.concatenate([np.interp(rng.random(n_per_window) * c[-1], c, grid) for c in cdf])
    window = np.repeat(np.arange(n_windows), n_per_window)
    walker = np.tile(np.repeat(np.arange(10), n_per_window // 10), n_windows)
    u = 0.5 * kappa * (x[None, :] - centres[:, None]) ** 2
    return u, window, x, walker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=25)
    parser.add_argument("--samples", type=int, default=2000, help="samples per window")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(args.threads)
    u, window, x, walker = exact_samples(args.windows, args.samples, seed=0)
    pymbar = import_pymbar()
    logging.getLogger("pymbar").setLevel(logging.ERROR)

    start = time.perf_counter()
    wham = WHAM(bins=100, n_bootstrap=args.bootstrap).fit(u, window, x, walker, seed=0)
    t_wham = time.perf_counter() - start

    start = time.perf_counter()
    n_k = np.bincount(window)
    mbar = pymbar.MBAR(u, n_k, n_bootstraps=args.bootstrap)
    errors = mbar.compute_free_energy_differences(uncertainty_method="bootstrap")["dDelta_f"][0]
    t_pymbar = time.perf_counter() - start

    print(f"{args.windows} windows x {args.samples} samples, {args.bootstrap} bootstrap resamples")
    print(f"eqfree WHAM (walker bootstrap): {t_wham:7.2f} s   pymbar MBAR (sample bootstrap): {t_pymbar:7.2f} s   "
          f"ratio pymbar/eqfree {t_pymbar / t_wham:.2f}")
    print(f"max |f_WHAM - f_pymbar| = {np.max(np.abs(wham.f_ - (mbar.f_k - mbar.f_k[0]))):.2e} kT; "
          f"median stderr ratio WHAM/pymbar {np.median(wham.f_stderr_[1:] / errors[1:]):.2f}")
    record("reweight_bootstrap", f"WHAM, {args.bootstrap} walker-bootstrap resamples, {args.windows} windows x "
           f"{args.samples} samples", t_wham, "s", peer="pymbar MBAR, sample bootstrap", peer_value=t_pymbar,
           ratio=t_pymbar / t_wham, target="at least as fast as pymbar", met=t_wham <= t_pymbar)


if __name__ == "__main__":
    main()
