"""Umbrella sampling: time to 10⁵ conditional samples, WHAM against pymbar, memory and reweighting share.

    python benchmarks/umbrella.py [--threads N] [--sections samples wham memory linear] [--scale S]

1. ``samples``: fast_slow_linear biased on x1 at 10 (κ = 0.5, dt = 1, from (0, 1)): one walker for 10⁵
   steps (10⁵ correlated samples, the paper's setting: ~1300 s on an 8-core Xeon E5-1660 v4 with
   OpenMM/PLUMED-style integration, section 4.2) against 1000 vectorized walkers giving 10⁵
   *decorrelated* samples after warm-up and thinning by the statistical inefficiency.
2. ``wham``: the 25-window double-well run of the acceptance test (κ = 20, dt = 5e-4): WHAM (eqfree) and
   MBAR (pymbar 4) on the same pooled samples, with the largest PMF difference between them.
3. ``memory``: ``eqfree umbrella --system double_well --cv x1 --grid=-3.5:3.5:25 --kappa 20 --steps 20000
   --walkers 64 --seed 3`` in a child process: its peak resident memory against the 1 GB target, and
   reweighting time (its default estimator: WHAM on the samples compressed into cells,
   :mod:`eqfree.reweight.cells`) as a share of the sampling time (target ≤ 0.25), both as the command reports them.
   (WHAM's bootstrap against pymbar's on the same data: ``benchmarks/reweight_bootstrap.py``.)
4. ``linear``: a user's 2-D potential V = (x1² − 1)² + 0.05 x2² (x2 slow: rate 0.1) with the linear CV
   ξ = x1 + 0.3 x2, 31 windows × 200 walkers × 60,000 steps (dt = 1e-3, κ = 30, every 10th step kept;
   ``--scale`` shortens the runs): the reweighting share of the sampling time (target ≤ 0.25) for WHAM on
   cells and for MBAR on every sample, each with its default walker bootstrap.
"""

from __future__ import annotations

import argparse
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from machine import record

from eqfree import SDE, SDEEvolver, systems
from eqfree.lift import UmbrellaSampling
from eqfree.restrict import CollectiveVariable
from eqfree.timeseries import statistical_inefficiency

PAPER_SECONDS = 1300.0  # Crabtree et al. (GANs and closures), section 4.2: US for 1e5 time steps on an 8-core CPU


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def conditional_samples(target: int = 100_000) -> None:
    linear = systems.get("fast_slow_linear")
    serial = UmbrellaSampling(linear.evolver(1.0), "x1", 0.5, n_steps=target, n_walkers=2, warmup=20, initial=linear.x0)
    window, seconds = timed(lambda: serial.window(10.0, seed=1))
    print(f"2 walkers (the fewest a window takes) x {target:.0e} steps: {seconds:7.2f} s -> correlated samples with "
          f"g = {window.attrs['inefficiency']:.1f} steps; the paper's 1e5 steps: ~{PAPER_SECONDS:.0f} s")
    record("umbrella", f"fast_slow_linear window, 2 walkers x {target:.0e} steps", seconds, "s",
           peer="paper's 1e5 US steps (8-core Xeon, not run here)", peer_value=PAPER_SECONDS,
           ratio=PAPER_SECONDS / seconds)

    walkers = 1000
    probe = UmbrellaSampling(linear.evolver(1.0), "x1", 0.5, n_steps=400, n_walkers=walkers, initial=linear.x0)
    g = probe.window(10.0, seed=2).attrs["inefficiency"]
    n_steps = int(math.ceil(target / walkers * math.ceil(g))) + 100  # 1e5 samples thinned by x1's inefficiency
    vectorized = UmbrellaSampling(linear.evolver(1.0), "x1", 0.5, n_steps=n_steps, n_walkers=walkers, initial=linear.x0)
    window, seconds = timed(lambda: vectorized.window(10.0, seed=3))
    kept = window.isel(time=slice(window.attrs["warmup_frames"], None, window.attrs["stride"]))
    n = kept.sizes["time"] * walkers
    x2_effective = n / statistical_inefficiency(kept.x.values[..., 1])  # x2 relaxes slower (1/a3 = 10) than x1
    print(f"{walkers} walkers x {n_steps} steps: {seconds:7.2f} s -> {n:.2e} samples decorrelated in x1 "
          f"(warm-up {window.attrs['warmup_frames']} steps, stride {window.attrs['stride']}), "
          f"{x2_effective:.2e} effective in x2; the paper's 1e5 steps: ~{PAPER_SECONDS:.0f} s")
    record("umbrella", f"fast_slow_linear window, {n:.1e} samples decorrelated in x1 ({walkers} walkers)", seconds,
           "s", peer="paper's 1e5 US steps (8-core Xeon, not run here)", peer_value=PAPER_SECONDS,
           ratio=PAPER_SECONDS / seconds)


def reweighting() -> None:
    well = systems.get("double_well")
    sampler = UmbrellaSampling(well.evolver(5e-4), "x1", 20.0, n_steps=8000, n_walkers=400, save_every=100,
                               initial=np.zeros(2))
    windows, seconds = timed(lambda: sampler.run(np.linspace(-3.5, 3.5, 25), seed=4))
    print(f"double well, 25 windows x 400 walkers x 8000 steps: {seconds:.2f} s, {windows.sizes['sample']} samples")
    wham, t_wham = timed(lambda: sampler.reweight(windows, "wham", bins=150, n_bootstrap=20, seed=0))
    mbar, t_mbar = timed(lambda: sampler.reweight(windows, "mbar", bins=150))
    difference = np.abs(wham.pmf_.pmf.values - mbar.pmf_.pmf.values).max()
    print(f"WHAM (eqfree, 20 bootstrap resamples): {t_wham:6.2f} s   "
          f"MBAR (pymbar, analytical errors): {t_mbar:6.2f} s   "
          f"ratio MBAR/WHAM {t_mbar / t_wham:.1f}; max |PMF_WHAM - PMF_MBAR| = {difference:.3f} kT")
    record("umbrella", f"double well, 25 windows: WHAM with 20 bootstrap resamples (max PMF gap {difference:.3f} kT)",
           t_wham, "s", peer="pymbar MBAR, analytical errors", peer_value=t_mbar, ratio=t_mbar / t_wham)


MEMORY_COMMAND = ["umbrella", "--system", "double_well", "--cv", "x1", "--grid=-3.5:3.5:25", "--kappa", "20",
                  "--steps", "20000", "--walkers", "64", "--seed", "3", "--quiet"]


def memory() -> None:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "eqfree", *MEMORY_COMMAND, "--out", str(Path(folder) / "u.zarr")]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux: the largest child
    sampling, reweighting = map(float, re.search(r"sampling ([\d.]+) s, reweighting ([\d.]+) s", output).groups())
    print(f"eqfree {' '.join(MEMORY_COMMAND)}: peak resident memory {peak / 1e9:.2f} GB (target <= 1 GB); "
          f"sampling {sampling:.1f} s, reweighting {reweighting:.1f} s, share {reweighting / sampling:.2f} "
          "(target <= 0.25)")
    command = "eqfree umbrella double_well, 25 windows x 64 walkers x 20000 steps"
    record("umbrella", f"{command}: peak resident memory", peak / 1e9, "GB", peer="target", peer_value=1.0,
           ratio=1e9 / peak, target="<= 1 GB", met=peak <= 1e9)
    record("umbrella", f"{command}: reweighting time (WHAM on cells)", reweighting, "s",
           peer="its sampling time", peer_value=sampling, ratio=sampling / reweighting,
           target="<= 0.25 of the sampling", met=reweighting <= 0.25 * sampling)


def linear_cv(scale: float) -> None:
    def drift(x, t):  # V = (x1² − 1)² + 0.05 x2²: x2 relaxes at rate 0.1, slow against the windows
        return torch.stack([-4 * x[:, 0] * (x[:, 0] ** 2 - 1), -0.1 * x[:, 1]], dim=1)

    sde = SDE(drift, lambda x, t: torch.full((2,), math.sqrt(2.0), dtype=x.dtype))
    cv = CollectiveVariable(lambda x: x[..., 0] + 0.3 * x[..., 1], name="xi")
    steps = int(60_000 * scale)
    sampler = UmbrellaSampling(SDEEvolver(sde, 1e-3), cv, 30.0, n_steps=steps, n_walkers=200, save_every=10,
                               initial=np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        windows, sampling = timed(lambda: sampler.run(np.linspace(-2, 2, 31), seed=1, save_states=False))
        for name in ("wham", "mbar"):
            _, reweighting = timed(lambda name=name: sampler.reweight(windows, name, bins=100, seed=2))
            print(f"linear CV, 31 windows x 200 walkers x {steps} steps: sampling {sampling:.1f} s, "
                  f"{name.upper()} (walker bootstrap) {reweighting:.1f} s on {windows.sizes['sample']} decorrelated "
                  f"samples, share {reweighting / sampling:.2f} (target <= 0.25)")
            default = ", the default" if name == "wham" else ""
            record("umbrella", f"linear CV, 31 windows x 200 walkers x {steps} steps: {name.upper()} reweighting "
                   f"(walker bootstrap{default})", reweighting, "s", peer="its sampling time", peer_value=sampling,
                   ratio=sampling / reweighting, target="<= 0.25 of the sampling",
                   met=reweighting <= 0.25 * sampling)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--sections", nargs="+", default=["samples", "wham", "memory", "linear"],
                        choices=["samples", "wham", "memory", "linear"])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 60,000 steps of the linear-CV run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sections = {"samples": conditional_samples, "wham": reweighting, "memory": memory,
                "linear": lambda: linear_cv(args.scale)}
    for name in args.sections:
        sections[name]()


if __name__ == "__main__":
    main()
