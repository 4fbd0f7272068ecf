"""Walker-steps per second of eqfree's SDE schemes against the normal-draw floor and peers, run here.

Schemes: the default Leimkuhler–Matthews (``leimkuhler_matthews``) and Euler–Maruyama, each one normal draw
per coordinate and step, float64 increments (and float32 increments into a float64 state, "mixed").
Floors, measured in the same run: drawing the run's normals and nothing else into a preallocated float64
buffer ``(16, walkers, m)``, one call per 16 steps, by numpy's ``standard_normal`` (PCG64 bits, ziggurat: the
generator of eqfree's CPU noise streams, :mod:`eqfree.evolve.noise`, which draws the same normals block by
block) and by ``torch.randn`` (Box–Muller: the generator of the CUDA streams). Issue 20's target: each scheme at
>= 0.7 of numpy's floor at 1e5 walkers, float64, one thread.
Small ensembles: microseconds per step at 500 walkers (target <= 60 us), against the stream's generator drawing
one step of the stream (a block always draws 1024 walkers: numpy on the CPU, in chunks of 16 steps as the stream
does; torch on CUDA).
Peers (CPU): a per-trajectory Python loop (one walker at a time, numpy scalar draws; the script a user would
write) and torchsde's Euler scheme (``torchsde.sdeint(method="euler")``) on the same SDE, when installed.

The ensembles' runs and floors are timed in ``--repeats`` rounds, each round running every one of them once
(after a warm-up run each), so slow drifts of other load hit them alike; a rate is the best round's, a ratio
the median over rounds of the ratio within a round (these machines are noisy). Every figure goes to
build/bench.json (``benchmarks/table.py``). Usage:

    python benchmarks/sde_throughput.py [--system double_well] [--walkers 1000 10000 100000] [--threads 1]
                                        [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from machine import cpu_model, record

from eqfree import systems
from eqfree.evolve import integrate

FLOOR_TARGET = 0.7  # of numpy's normal-draw floor, at 1e5 walkers
STEP_TARGET_US = 60.0  # per step at 500 walkers
CPU = torch.device("cpu")
DT = {"double_well": 1e-3, "fast_slow_linear": 0.1}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(run, repeats: int, device: torch.device = CPU) -> float:
    run()  # warm-up
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def rounds(runs: dict, repeats: int, device: torch.device = CPU) -> dict[str, np.ndarray]:
    """Seconds of each of ``runs`` (label -> callable) in ``repeats`` rounds, each running all of them once."""
    for run in runs.values():  # warm-up
        run()
    synchronize(device)
    seconds = {label: [] for label in runs}
    for _ in range(repeats):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            synchronize(device)
            seconds[label].append(time.perf_counter() - start)
    return {label: np.array(found) for label, found in seconds.items()}


def median_ratio(seconds: dict[str, np.ndarray], a: str, b: str) -> float:
    """Rate of ``a`` over rate of ``b``: the median over rounds of the ratio within a round."""
    return float(np.median(seconds[b] / seconds[a]))


def eqfree_run(system, walkers: int, steps: int, scheme: str, noise_dtype=torch.float64, device: torch.device = CPU):
    x0 = np.tile(system.x0, (walkers, 1))
    return lambda: integrate(system, x0, scheme=scheme, dt=DT[system.name], n_steps=steps, seed=1,
                             save_every=steps, noise_dtype=noise_dtype, device=device)


def eqfree_seconds(system, walkers: int, steps: int, repeats: int, scheme: str, noise_dtype=torch.float64,
                   device: torch.device = CPU) -> float:
    return best_seconds(eqfree_run(system, walkers, steps, scheme, noise_dtype, device), repeats, device)


def numpy_floor(walkers: int, steps: int, m: int):
    """numpy drawing the run's normals (float64, into a preallocated buffer) and nothing else."""
    rng = np.random.default_rng(0)
    out = np.empty((16, walkers, m))
    return lambda: [rng.standard_normal(out=out) for _ in range(0, steps, 16)]


def torch_floor(walkers: int, steps: int, m: int, dtype=torch.float64, device: torch.device = CPU):
    """``torch.randn`` drawing the run's normals into a preallocated buffer and nothing else."""
    out = torch.empty((16, walkers, m), dtype=dtype, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    return lambda: [torch.randn(out.shape, generator=generator, out=out) for _ in range(0, steps, 16)]


SCALAR_DRIFT = {  # one walker's drift with Python floats, for the per-trajectory loop
    "double_well": lambda s, x1, x2: (-(s.a * x1**3 - s.b * x1 + s.c), -s.d * x2),
    "fast_slow_linear": lambda s, x1, x2: (s.a1, s.a3 * (1 - x2)),
}


def python_loop_seconds(system, walkers: int, steps: int, repeats: int) -> float:
    """One trajectory after another, scalar numpy draws: x += f dt + g √dt ξ."""
    dt = DT[system.name]
    g1, g2 = (float(v) for v in torch.broadcast_to(system.diffusion(torch.zeros(1, 2, dtype=torch.float64), 0.0),
                                                   (1, 2))[0] * math.sqrt(dt))
    drift = SCALAR_DRIFT[system.name]

    def run():
        rng = np.random.default_rng(1)
        for _ in range(walkers):
            x1, x2 = system.x0
            for _ in range(steps):
                f1, f2 = drift(system, x1, x2)
                x1 += f1 * dt + g1 * rng.standard_normal()
                x2 += f2 * dt + g2 * rng.standard_normal()

    return best_seconds(run, repeats)


def torchsde_seconds(system, walkers: int, repeats: int) -> tuple[float, int] | None:
    """Seconds for 200 steps (torchsde's Brownian interval recurses once per step: deep runs overflow the
    stack, and with torchsde 0.2.6 a run of [0, 10] in steps of 0.1 did not terminate)."""
    steps = 200
    try:
        import torchsde
    except ImportError:
        return None

    class Wrapped(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, x):
            return system.drift(x, float(t))

        def g(self, t, x):
            return system.diffusion(x, float(t)).expand_as(x)

    dt = DT[system.name]
    x0 = torch.tensor(np.tile(system.x0, (walkers, 1)))
    ts = torch.tensor([0.0, dt * steps], dtype=torch.float64)
    return best_seconds(lambda: torchsde.sdeint(Wrapped(), x0, ts, method="euler", dt=dt), repeats), steps


def ensembles(system, args) -> None:
    name, m, device = system.name, system.dim, args.device
    print(f"{name}, dt = {DT[name]:g}, {args.threads} thread(s), device {device}, best of {args.repeats}; "
          "walker-steps per second (ratios: eqfree / floor measured alongside)")
    header = (f"{'walkers':>8} {'LM f64':>9} {'EM f64':>9} {'EM mixed':>9} {'numpy':>9} {'torch':>9} "
              f"{'LM/numpy':>9} {'EM/numpy':>9} {'LM/torch':>9} {'EM/torch':>9} {'torch/numpy':>11} {'load':>5}")
    print(header)
    for walkers in args.walkers:
        steps = max(16, int(args.walker_steps / walkers))
        work = walkers * steps
        runs = {"LM": eqfree_run(system, walkers, steps, "leimkuhler_matthews", device=device),
                "EM": eqfree_run(system, walkers, steps, "euler_maruyama", device=device),
                "EM mixed": eqfree_run(system, walkers, steps, "euler_maruyama", torch.float32, device),
                "numpy": numpy_floor(walkers, steps, m),
                "torch": torch_floor(walkers, steps, m, device=device)}
        seconds = rounds(runs, args.repeats, device)
        rates = {label: work / found.min() for label, found in seconds.items()}
        floor_np, floor_torch = rates["numpy"], rates["torch"]
        load = os.getloadavg()[0]
        ratios = " ".join(f"{median_ratio(seconds, a, b):{width}.2f}" for a, b, width in (
            ("LM", "numpy", 9), ("EM", "numpy", 9), ("LM", "torch", 9), ("EM", "torch", 9), ("torch", "numpy", 11)))
        print(f"{walkers:8d} {rates['LM']:9.3g} {rates['EM']:9.3g} {rates['EM mixed']:9.3g} {floor_np:9.3g} "
              f"{floor_torch:9.3g} {ratios} {load:5.1f}", flush=True)
        scope = f"{name}, {walkers:.0e} walkers, float64, {args.threads} thread(s), {device}"
        target = walkers == 100_000 and device.type == "cpu"
        for label, scheme in (("LM", "Leimkuhler-Matthews (default)"), ("EM", "Euler-Maruyama")):
            record("sde_throughput", f"{scheme}: walker-steps/s, {scope}", rates[label], "walker-steps/s",
                   peer="numpy standard_normal floor" + (" (the stream's generator)" if device.type == "cpu" else ""),
                   peer_value=floor_np,
                   ratio=median_ratio(seconds, label, "numpy"),
                   target=f">= {FLOOR_TARGET} of the floor" if target else None,
                   met=median_ratio(seconds, label, "numpy") >= FLOOR_TARGET if target else None)
            record("sde_throughput", f"{scheme}: walker-steps/s, {scope}", rates[label], "walker-steps/s",
                   peer="torch.randn floor" + (" (the stream's generator)" if device.type == "cuda" else ""),
                   peer_value=floor_torch,
                   ratio=median_ratio(seconds, label, "torch"))
        record("sde_throughput", f"Euler-Maruyama, float32 increments: walker-steps/s, {scope}", rates["EM mixed"],
               "walker-steps/s", peer="numpy standard_normal floor (float64)", peer_value=floor_np,
               ratio=median_ratio(seconds, "EM mixed", "numpy"))
        record("sde_throughput", f"torch.randn float64 normals: walker-steps/s of draws, {scope}", floor_torch,
               "walker-steps/s", peer="numpy standard_normal floor", peer_value=floor_np,
               ratio=median_ratio(seconds, "torch", "numpy"))


def stream_draw(steps: int, m: int, device: torch.device):
    """The stream's generator drawing ``steps`` steps of one block (1024 walkers x m) and nothing else."""
    if device.type == "cuda":
        return torch_floor(1024, steps, m, device=device)
    rng = np.random.Generator(np.random.PCG64(0))
    out = np.empty((16, 1024, m))
    return lambda: [rng.standard_normal(out=out) for _ in range(0, steps, 16)]


def small_ensemble(system, args, walkers: int = 500) -> None:
    """Microseconds per step at ``walkers``, against the stream's generator drawing one step of the stream (a block
    of 1024 walkers)."""
    steps = 64 if args.quick else 2000
    schemes = {"Leimkuhler-Matthews (default)": "leimkuhler_matthews", "Euler-Maruyama": "euler_maruyama"}
    runs = {label: eqfree_run(system, walkers, steps, scheme, device=args.device) for label, scheme in schemes.items()}
    runs["draw"] = stream_draw(steps, system.dim, args.device)
    seconds = rounds(runs, args.repeats, args.device)
    draw = seconds["draw"].min() / steps * 1e6
    generator = "numpy" if args.device.type == "cpu" else "torch"
    print(f"\n{walkers} walkers, {steps} steps: microseconds per step (target <= {STEP_TARGET_US:g}); "
          f"{generator} drawing one step of the stream (1024 x {system.dim} normals): {draw:.1f} us")
    for label in schemes:
        per_step = seconds[label].min() / steps * 1e6
        print(f"   {label}: {per_step:.1f} us per step (load {os.getloadavg()[0]:.1f})")
        record("sde_throughput", f"{label}: time per step, {system.name}, {walkers} walkers, {args.device}",
               per_step, "us", peer=f"{generator} drawing one step of the stream", peer_value=draw,
               ratio=float(np.median(seconds["draw"] / seconds[label])),
               target=f"<= {STEP_TARGET_US:g} us" if args.device.type == "cpu" else None,
               met=per_step <= STEP_TARGET_US if args.device.type == "cpu" else None)


def peers(system, args) -> None:
    """eqfree's default scheme at the largest ensemble against the Python loop and torchsde (CPU)."""
    walkers = args.walkers[-1]
    loop_walkers, loop_steps = (2, 50) if args.quick else (20, 2000)
    loop = loop_walkers * loop_steps / python_loop_seconds(system, loop_walkers, loop_steps, args.repeats)
    found = torchsde_seconds(system, walkers, args.repeats)
    steps = found[1] if found else max(16, int(args.walker_steps / walkers))
    ours = walkers * steps / eqfree_seconds(system, walkers, steps, args.repeats, "euler_maruyama")
    print(f"\npeers at {walkers} walkers, Euler-Maruyama, {steps} steps: eqfree {ours:.3g} walker-steps/s; "
          f"per-trajectory Python loop {loop:.3g} (x{ours / loop:.0f})", end="")
    scope = f"{system.name}, {walkers:.0e} walkers, float64, {args.threads} thread(s)"
    record("sde_throughput", f"Euler-Maruyama: walker-steps/s, {scope}", ours, "walker-steps/s",
           peer="per-trajectory Python loop", peer_value=loop, ratio=ours / loop)
    if found:
        theirs = walkers * steps / found[0]
        print(f"; torchsde euler {theirs:.3g} (x{ours / theirs:.1f})")
        record("sde_throughput", f"Euler-Maruyama: walker-steps/s, {scope}", ours, "walker-steps/s",
               peer="torchsde sdeint(method='euler')", peer_value=theirs, ratio=ours / theirs)
    else:
        print("; torchsde not installed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", default="double_well", choices=sorted(DT))
    parser.add_argument("--walkers", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (walker-steps/s and torch's floor there)")
    parser.add_argument("--walker-steps", type=float, default=2e7, help="work per timed run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = parser.parse_args()
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here; run with --device cpu")
    if args.quick:
        args.walkers, args.repeats, args.walker_steps = [100, 1000], 1, 2e4
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}; CPU: {cpu_model()}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    system = systems.get(args.system)
    ensembles(system, args)
    small_ensemble(system, args)
    if args.device.type == "cpu":
        peers(system, args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
