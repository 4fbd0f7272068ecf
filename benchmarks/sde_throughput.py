"""Walker-steps per second of eqfree's SDE schemes on `fast_slow_linear`, against peers and floors run here.

Schemes: Euler–Maruyama and the default Leimkuhler–Matthews (one normal draw per coordinate and step each).
Floor: numpy's ``standard_normal`` (float64, ziggurat) drawing the run's normals and nothing else; the
ratio eqfree/floor is the fraction of that limit each scheme reaches (issue 20's target: 0.7 at 1e5
walkers, float64).
Peers, measured in the same run on the same core:
- a per-trajectory Python loop (one walker at a time, numpy scalar draws), the script a user would write;
- torchsde's Euler scheme (``torchsde.sdeint(method="euler")``) on the same SDE, when torchsde is installed.

Target: >= 5e7 walker-steps/s on one CPU core at 1e5 walkers. Each figure is the best of ``--repeats``
runs (these machines are noisy). Usage:

    python benchmarks/sde_throughput.py [--walkers 1000 10000 100000] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from eqfree import systems
from eqfree.evolve import integrate

TARGET = 5e7


def best_rate(run, walker_steps: int, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return walker_steps / min(times)


def eqfree_rate(system, walkers: int, steps: int, repeats: int, noise_dtype, scheme="euler_maruyama") -> float:
    x0 = np.tile(system.x0, (walkers, 1))
    run = lambda: integrate(system, x0, scheme=scheme, dt=0.1, n_steps=steps, seed=1, save_every=steps,
                            noise_dtype=noise_dtype)
    return best_rate(run, walkers * steps, repeats)


def numpy_floor(walkers: int, steps: int, dim: int, repeats: int) -> float:
    """Walker-steps/s if numpy drawing the run's ``dim`` float64 normals per walker-step were the only work
    (in chunks of 16 steps, as eqfree's noise stream draws them)."""
    rng = np.random.default_rng(0)
    out = np.empty((16, walkers, dim))
    return best_rate(lambda: [rng.standard_normal(out=out) for _ in range(0, steps, 16)], walkers * steps, repeats)


def python_loop_rate(system, walkers: int, steps: int, repeats: int) -> float:
    """One trajectory after another, scalar numpy draws: x += f dt + g √dt ξ."""
    a1, a2, a3, a4, dt = system.a1, system.a2, system.a3, system.a4, 0.1
    sqrt_dt = math.sqrt(dt)

    def run():
        rng = np.random.default_rng(1)
        for _ in range(walkers):
            x1, x2 = system.x0
            for _ in range(steps):
                x1 += a1 * dt + a2 * sqrt_dt * rng.standard_normal()
                x2 += a3 * (1 - x2) * dt + a4 * sqrt_dt * rng.standard_normal()

    return best_rate(run, walkers * steps, repeats)


def torchsde_rate(system, walkers: int, steps: int, repeats: int) -> float | None:
    """Always 200 steps: torchsde's Brownian interval recurses once per step (deep runs overflow the
    stack), and with torchsde 0.2.6 here a run of [0, 10] in steps of 0.1 did not terminate."""
    steps = 200
    try:
        import torchsde
    except ImportError:
        return None

    class FastSlowLinear(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, x):
            return system.drift(x, float(t))

        def g(self, t, x):
            return system.diffusion(x, float(t)).expand_as(x)

    sde = FastSlowLinear()
    x0 = torch.tensor(np.tile(system.x0, (walkers, 1)))
    ts = torch.tensor([0.0, 0.1 * steps], dtype=torch.float64)
    run = lambda: torchsde.sdeint(sde, x0, ts, method="euler", dt=0.1)
    return best_rate(run, walkers * steps, repeats)


def gaussian_ceiling(dtype, dim: int, repeats: int) -> float:
    """Walker-steps/s if drawing ``dim`` standard normals per walker-step were the only work."""
    buffer = torch.empty(1 << 22, dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    return best_rate(lambda: torch.randn(buffer.shape, generator=generator, out=buffer), buffer.numel(), repeats) / dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--walkers", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--walker-steps", type=float, default=2e7, help="work per timed run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = parser.parse_args()
    if args.quick:
        args.walkers, args.repeats, args.walker_steps = [100, 1000], 1, 2e4
    torch.set_num_threads(args.threads)
    system = systems.get("fast_slow_linear")

    loop_walkers, loop_steps = (2, 50) if args.quick else (20, 2000)
    loop = python_loop_rate(system, loop_walkers, loop_steps, args.repeats)
    print(f"fast_slow_linear, dt = 0.1, {args.threads} thread(s), best of {args.repeats}; walker-steps per second")
    print(f"per-trajectory Python loop: {loop:.3g} (independent of the ensemble size)")
    header = (f"{'walkers':>8} {'eqfree f64':>11} {'LM f64':>9} {'eqfree mixed':>13} {'torchsde':>10} "
              f"{'f64/loop':>9} {'f64/torchsde':>13} {'numpy floor':>12} {'EM/floor':>9} {'LM/floor':>9}")
    print(header)
    for walkers in args.walkers:
        steps = max(20, int(args.walker_steps / walkers))
        f64 = eqfree_rate(system, walkers, steps, args.repeats, torch.float64)
        lm = eqfree_rate(system, walkers, steps, args.repeats, torch.float64, "leimkuhler_matthews")
        floor = numpy_floor(walkers, steps, 2, args.repeats)
        mixed = eqfree_rate(system, walkers, steps, args.repeats, torch.float32)
        peer = torchsde_rate(system, walkers, steps, args.repeats)
        peer_text = f"{peer:10.3g}" if peer else f"{'n/a':>10}"
        ratio = f"{f64 / peer:13.1f}" if peer else f"{'n/a':>13}"
        print(f"{walkers:8d} {f64:11.3g} {lm:9.3g} {mixed:13.3g} {peer_text} {f64 / loop:9.0f} {ratio} "
              f"{floor:12.3g} {f64 / floor:9.2f} {lm / floor:9.2f}")
    print("ceiling set by torch's CPU Gaussian generator alone: "
          f"float64 {gaussian_ceiling(torch.float64, 2, args.repeats):.3g}, "
          f"float32 {gaussian_ceiling(torch.float32, 2, args.repeats):.3g}")
    print(f"target at 1e5 walkers on one core: {TARGET:.0e} walker-steps/s "
          "(f64: float64 increments; mixed: float32 increments, float64 state)")


if __name__ == "__main__":
    main()
