"""Wall time of a 64-point burst closure of `averaging_cubic` on 1 and 2 worker processes, the cost of a 2-D
closure (`double_well`, CVs x1 and x2) against its number of grid points and of workers, the
accuracy of its diffusion against the homogenized D(z) beside its cost (the default slope after
healing, debiased across the grid, against the previous default, the end-point Var(Δz)/τ, from the
same bursts), the cost of the closed SDE's mean path with its band, and the fine steps projective
integration saves against direct simulation. Prints figures, asserts nothing.

Workers are processes (``ProcessPoolExecutor``, spawned, one torch thread each; ``--dask`` adds a
dask ``LocalCluster`` with worker processes), warmed up before timing. The stores written with 1
and 2 workers are checked to hold the same numbers. Usage:

    python benchmarks/closure_scaling.py [--points 64] [--walkers 2000] [--steps 100] [--repeats 3] [--dask]
                                         [--accuracy-walkers 20000] [--sides 4 8 16] [--walkers-2d 1000] [--only-2d]

The 2-D figures go to build/bench.json (:func:`machine.record`) with the floor measured in the same run: the
bursts alone (the estimator called at each grid point in a loop: no store, no executor, no progress).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model, record

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.cli.closure import StateLift
from eqfree.closures import BurstEstimator, Closure, estimate_closure, integrate, mean_path
from eqfree.coarse import WalkerBursts, projective_integrate
from eqfree.seeding import child

SYSTEM = systems.get("averaging_cubic")
DT = SYSTEM.eps / 10
LIFT = SYSTEM.exact_lift(DT)


def one_thread():
    torch.set_num_threads(1)


def warm_up(estimator) -> None:
    time.sleep(0.5)  # long enough that every worker gets one
    estimator(0.0, 0)


def timed_closure(estimator, grid, store: Path, executor, repeats: int) -> float:
    """Best of ``repeats`` runs (the machine is shared and noisy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimate_closure(estimator, grid, seed=1, store=store, executor=executor, overwrite=True)
        times.append(time.perf_counter() - start)
    return min(times)


def scaling(args, directory: Path) -> None:
    grid = np.linspace(-1.5, 1.5, args.points)
    estimator = BurstEstimator(LIFT, SYSTEM.evolver(DT), Coordinates("x1"), tau=args.steps * DT, n_walkers=args.walkers)
    walker_steps = args.points * args.walkers * args.steps
    print(f"closure: {args.points} points x {args.walkers} walkers x {args.steps} steps = "
          f"{walker_steps:.2e} walker-steps")
    times = {"serial (in-process)": timed_closure(estimator, grid, directory / "serial.zarr", None, args.repeats)}
    context = multiprocessing.get_context("spawn")
    for workers in (1, 2):
        with ProcessPoolExecutor(workers, mp_context=context, initializer=one_thread) as pool:
            list(pool.map(warm_up, [estimator] * workers))  # start the workers and import torch before timing
            store = directory / f"pool{workers}.zarr"
            times[f"{workers} process(es)"] = timed_closure(estimator, grid, store, pool, args.repeats)
    if args.dask:
        from distributed import Client, LocalCluster

        for workers in (1, 2):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            with cluster, Client(cluster) as client:
                client.run(one_thread)
                times[f"dask, {workers} worker(s)"] = timed_closure(estimator, grid, directory / f"dask{workers}.zarr",
                                                                    client.get_executor(), args.repeats)
    for label, seconds in times.items():
        print(f"  {label:24s} {seconds:7.2f} s   {walker_steps / seconds:.2e} walker-steps/s")
    print(f"  speed-up 2 vs 1 processes: {times['1 process(es)'] / times['2 process(es)']:.2f}x "
          f"(machine cores: {multiprocessing.cpu_count()})")
    if args.dask:
        print(f"  speed-up 2 vs 1 dask workers: {times['dask, 1 worker(s)'] / times['dask, 2 worker(s)']:.2f}x")
    from eqfree.closures import load

    same = load(directory / "pool1.zarr")["drift"].equals(load(directory / "pool2.zarr")["drift"])
    print(f"  same numbers with 1 and 2 workers: {same}")


def scaling_2d(args, directory: Path) -> None:
    """A 2-D closure of double_well (CVs x1, x2: its whole state, lifted as the point itself; bursts of 10 steps of
    dt = 1e-3) on side × side grids: wall time in-process and on 1 and 2 worker processes, against the floor of the
    bursts alone. The per-point cost should stay flat as the grid grows (the store writes one chunk per point)."""
    well = systems.get("double_well")
    estimator = BurstEstimator(StateLift((0, 1)), well.evolver(1e-3), Coordinates(["x1", "x2"]), tau=0.01,
                               n_walkers=args.walkers_2d)
    context = multiprocessing.get_context("spawn")
    print(f"2-D closure of double_well (x1, x2), {args.walkers_2d} walkers x 10 steps per point, best of "
          f"{args.repeats}; floor: the bursts alone ({cpu_model()}, {multiprocessing.cpu_count()} cores)")
    print(f"  {'points':>7} {'floor s':>8} {'serial s':>9} {'1 proc s':>9} {'2 proc s':>9} {'floor/serial':>13} "
          f"{'2 vs 1 proc':>12} {'ms/point':>9}")
    per_point = {}
    with ProcessPoolExecutor(2, mp_context=context, initializer=one_thread) as two, \
            ProcessPoolExecutor(1, mp_context=context, initializer=one_thread) as one:
        for pool, n in ((one, 1), (two, 2)):
            list(pool.map(warm_up_2d, [estimator] * n))
        for side in args.sides:
            grid = [np.linspace(-2.5, 2.5, side), np.linspace(-1.5, 1.5, side)]
            points = [np.array(p) for p in np.stack(np.meshgrid(*grid, indexing="ij"), axis=-1).reshape(-1, 2)]
            floors = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for i, point in enumerate(points):
                    estimator(point, child(1, i))
                floors.append(time.perf_counter() - start)
            floor = min(floors)
            serial = timed_closure(estimator, grid, directory / f"serial{side}.zarr", None, args.repeats)
            single = timed_closure(estimator, grid, directory / f"one{side}.zarr", one, args.repeats)
            double = timed_closure(estimator, grid, directory / f"two{side}.zarr", two, args.repeats)
            per_point[side] = serial / len(points)
            print(f"  {len(points):7d} {floor:8.2f} {serial:9.2f} {single:9.2f} {double:9.2f} {floor / serial:13.2f} "
                  f"{single / double:12.2f} {1e3 * per_point[side]:9.1f}")
            record("closure_scaling", f"2-D closure, {len(points)} points, in-process", serial, "s",
                   peer="bursts alone (floor)", peer_value=floor, ratio=floor / serial)
            record("closure_scaling", f"2-D closure, {len(points)} points, 2 vs 1 worker processes", double, "s",
                   peer="1 worker process", peer_value=single, ratio=single / double)
    smallest = min(args.sides)
    for side in args.sides:
        print(f"  cost per point, {side * side} points / {smallest * smallest} points: "
              f"{per_point[side] / per_point[smallest]:.2f}")


def warm_up_2d(estimator) -> None:
    time.sleep(0.5)  # long enough that every worker gets one
    estimator(np.zeros(2), 0)


def diffusion_accuracy(walkers: int) -> None:
    """`closure estimate --grid=-1:1:9 --burst 0.01 --walkers N` (issue 19's acceptance command): the relative
    error of D against the homogenized value, default estimator vs the end-point Var(Δz(τ))/τ of the same
    bursts (same seeds, so the same trajectories; the previous default)."""
    grid, tau = np.linspace(-1, 1, 9), 0.01
    homogenized = SYSTEM.homogenized_diffusion(grid)
    estimator = BurstEstimator(LIFT, SYSTEM.evolver(DT), Coordinates("x1"), tau=tau, n_walkers=walkers)
    start = time.perf_counter()
    closure = Closure(estimate_closure(estimator, grid, seed=1)).dataset
    seconds = time.perf_counter() - start
    stepper = CoarseTimeStepper(LIFT, SYSTEM.evolver(DT), Coordinates("x1"))
    start = time.perf_counter()
    end_point, end_se = [], []
    for i, z in enumerate(grid):
        step = stepper(z, tau, walkers, seed=child(1, i), save_every=round(tau / DT)).values[:, :, 0]
        deviation2 = (step[-1] - step[0] - (step[-1] - step[0]).mean()) ** 2 * walkers / (walkers - 1)
        end_point.append(deviation2.mean() / tau)
        end_se.append(deviation2.std(ddof=1) / (tau * np.sqrt(walkers)))
    end_seconds = time.perf_counter() - start
    print(f"diffusion on 9 points of [-1, 1], tau = 10 eps, {walkers} walkers, against the homogenized D(z):")
    for label, values, se, cost in (("default (slope, debiased)", closure["diffusion"].values,
                                     closure["diffusion_stderr"].values, seconds),
                                    ("previous (end point)", np.array(end_point), np.array(end_se), end_seconds)):
        relative, relative_se = values / homogenized - 1, se / homogenized
        pooled = np.sqrt(np.sum(relative_se**2)) / grid.size
        print(f"  {label:26s} mean error {100 * relative.mean():+6.2f} % ± {100 * pooled:.2f} %, worst "
              f"{100 * np.abs(relative).max():5.2f} %, median se {100 * np.median(relative_se):.2f} %, "
              f"within 3 se + 2 %: {int(np.sum(np.abs(relative) <= 3 * relative_se + 0.02))}/9, {cost:6.1f} s")


def band_cost() -> None:
    """The closed SDE's mean path with its band (4096 paths, 32 closures drawn) against the closed ODE."""
    closure = Closure(estimate_closure(BurstEstimator(LIFT, SYSTEM.evolver(DT), Coordinates("x1"), tau=0.01,
                                                      n_walkers=2000), np.linspace(-1.5, 1.5, 41), seed=3))
    times = np.linspace(0, 1, 101)
    start = time.perf_counter()
    integrate(closure, 1.0, (0, 1), t_eval=times)
    ode = time.perf_counter() - start
    start = time.perf_counter()
    band = mean_path(closure, 1.0, (0, 1), t_eval=times, seed=4)
    seconds = time.perf_counter() - start
    print(f"mean path with band to t = 1 (dt = 1e-3): {seconds:.1f} s (closed ODE {ode:.2f} s); closure sd at t = 1 "
          f"{float(band.closure_sd[-1]):.2g}, Monte Carlo se {float(band.z_stderr[-1]):.2g}")


def projective_savings() -> None:
    """Fine steps to x1(t = 1) from x1 = 1 at equal statistical accuracy: 2000 direct walkers of the full
    system against PI-RK4 (macro step 0.2, one-step bursts, 960 walkers, 100 independent realizations
    whose spread gives the standard error); the acceptance test in tests/test_coarse.py asserts ≥ 10x."""
    lift = SYSTEM.exact_lift(DT)  # x2 ~ N(z, 2s²/(2 − dt/ε)): Euler–Maruyama's own conditional law
    walkers, direct_steps = 2000, round(1.0 / DT)
    start = time.perf_counter()
    x0 = lift(np.array([1.0]), walkers, seed=2)
    final = SYSTEM.simulate(walkers, direct_steps, seed=3, x0=x0, save_every=direct_steps)[-1, :, 0].values
    direct_seconds = time.perf_counter() - start
    direct_se = final.std(ddof=1) / np.sqrt(walkers)
    print(f"direct: {walkers} walkers x {direct_steps} steps = {walkers * direct_steps:.2e} fine steps, "
          f"{direct_seconds:.1f} s, x1(1) = {final.mean():.5f} ± {direct_se:.5f}")
    pi_walkers, realizations = 960, 100
    stepper = CoarseTimeStepper(lift, SYSTEM.evolver(DT), Coordinates("x1"))
    bursts = WalkerBursts(stepper, tau=DT, n_walkers=pi_walkers, seed=5)
    start = time.perf_counter()
    result = projective_integrate(bursts, [1.0], 1.0, 0.2, method="rk4", realizations=realizations)
    seconds = time.perf_counter() - start
    total = int(result.fine_steps[-1]) * pi_walkers * realizations
    print(f"PI-RK4: {realizations} x {pi_walkers} walkers x {int(result.fine_steps[-1])} steps = "
          f"{total:.2e} fine steps, "
          f"{seconds:.1f} s, x1(1) = {float(result.z[-1, 0]):.5f} ± {float(result.z_stderr[-1, 0]):.5f}; "
          f"{walkers * direct_steps / total:.1f}x fewer fine steps at a standard error ratio "
          f"{float(result.z_stderr[-1, 0]) / direct_se:.2f} (PI/direct)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--walkers", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100, help="fine steps per burst (dt = eps/10)")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--dask", action="store_true", help="also time a dask LocalCluster with worker processes")
    parser.add_argument("--accuracy-walkers", type=int, default=20_000, help="walkers per point of the D accuracy run")
    parser.add_argument("--sides", type=int, nargs="+", default=[4, 8, 16], help="2-D grids of side x side points")
    parser.add_argument("--walkers-2d", type=int, default=1000, help="walkers per point of the 2-D closure")
    parser.add_argument("--only-2d", action="store_true", help="only the 2-D closure's scaling")
    args = parser.parse_args()
    one_thread()
    with tempfile.TemporaryDirectory() as directory:
        scaling_2d(args, Path(directory))
        if args.only_2d:
            return
        scaling(args, Path(directory))
    diffusion_accuracy(args.accuracy_walkers)
    band_cost()
    projective_savings()


if __name__ == "__main__":
    main()
