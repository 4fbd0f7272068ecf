"""Cost of kinetics from a closure: the finite-volume generator and the sparse solve of the mean first-passage
time on 100² and 40³ grids (and the 2-D committor), against a floor measured in the same run — one sparse
matrix-vector product of the same generator, the least any solver must do — and the 1-D quadrature with its
64 drawn closures against one closed-SDE first passage ensemble of 500 paths (the check it replaces).
Prints figures, asserts nothing. Usage:

    python benchmarks/kinetics.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from eqfree.closures import (
    Box,
    Closure,
    grid_committor,
    grid_generator,
    grid_mfpt,
    passage,
    simulated_passages,
)
from eqfree.closures.store import template


def best(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def problem(n_dims: int, points: int):
    """A tilted double well in z1 with harmonic confinement in the others, correlated constant diffusion."""
    axes = [np.linspace(-2.0, 2.0, points)] * n_dims
    z = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    drift = -z.copy()
    drift[..., 0] = -(z[..., 0] ** 3 - 2 * z[..., 0] + 0.2)
    tensor = np.eye(n_dims) + 0.2 * (np.ones((n_dims, n_dims)) - np.eye(n_dims))
    return axes, z, drift, np.broadcast_to(tensor, (*z.shape[:-1], n_dims, n_dims))


def grids(repeats: int) -> None:
    print(f"{'grid':>8} {'cells':>8} {'generator s':>12} {'MFPT solve s':>13} {'committor s':>12} "
          f"{'matvec s':>10} {'solve/matvec':>13}")
    for n_dims, points in ((2, 100), (3, 40)):
        row(n_dims, points, repeats)


def row(n_dims: int, points: int, repeats: int) -> None:
    axes, z, drift, diffusion = problem(n_dims, points)
    build, generator = best(lambda: grid_generator(axes, drift, diffusion), repeats)
    target = z[..., 0] >= 1.0
    solve, _ = best(lambda: grid_mfpt(generator, target), repeats)
    committor = float("nan")
    if n_dims == 2:
        committor, _ = best(lambda: grid_committor(generator, z[..., 0] <= -1.0, target), repeats)
    vector = np.ones(generator.shape[0])
    floor, _ = best(lambda: generator @ vector, max(repeats, 10))
    print(f"{'x'.join([str(points)] * n_dims):>8} {generator.shape[0]:>8} {build:12.3f} {solve:13.3f} "
          f"{committor:12.3f} {floor:10.2e} {solve / floor:13.0f}")


def one_dimensional(repeats: int) -> None:
    grid = np.linspace(-2.0, 1.0, 41)
    data = template(grid, diffusion=True)
    data["drift"].values[:] = -(grid**3 - 2 * grid + 0.2)
    data["diffusion"].values[:] = 1.5
    data["drift_stderr"].values[:] = 0.05
    data["diffusion_stderr"].values[:] = 0.01
    data["n_samples"].values[:] = 1
    data["done"].values[:] = True
    closure = Closure(data)
    target = Box((1.0,), (1.0,))
    quadrature, result = best(lambda: passage(closure, -1.2, target, seed=1), repeats)
    simulated, times = best(lambda: simulated_passages(closure, -1.2, target, n_walkers=500, dt=1e-3, seed=2,
                                                       max_time=1e3), 1)
    print(f"1-D: quadrature with 64 drawn closures {quadrature:.3f} s (MFPT {result['mfpt']:.4g} ± "
          f"{result['mfpt_stderr']:.2g}); 500 closed-SDE passages {simulated:.2f} s (mean {np.mean(times):.4g} ± "
          f"{np.std(times) / np.sqrt(500):.2g}): {simulated / quadrature:.0f} x slower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    grids(args.repeats)
    one_dimensional(args.repeats)


if __name__ == "__main__":
    main()
