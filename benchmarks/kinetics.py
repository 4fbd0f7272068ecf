"""Cost of kinetics from a closure: the finite-volume generator and the sparse solve of the mean first-passage
time on 100² and 40³ grids (and the 2-D committor), beside two figures measured in the same run — the peer,
scipy's solve of the Dirichlet Laplacian of the same size (``spsolve`` in 2-D, conjugate gradients with a
Jacobi preconditioner in 3-D: the cheapest well-kept solve a grid this size admits, on a symmetric matrix),
and the floor, one sparse matrix-vector product of the same generator; then ``passage`` on a 2-D closure (the
MFPT with 64 drawn closures, at the default mesh) and the 1-D quadrature with its 64 drawn closures against one
closed-SDE first-passage ensemble of 500 paths (the check it replaces). Prints figures and appends them to
build/bench.json (:func:`machine.record`); asserts nothing. Usage:

    python benchmarks/kinetics.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import cpu_model, record
from scipy import sparse
from scipy.sparse.linalg import cg, spsolve

from eqfree import systems
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


def laplacian(n_dims: int, points: int) -> sparse.csr_matrix:
    """The (2n+1)-point Dirichlet Laplacian −Δ on ``points``ⁿ interior nodes (symmetric positive definite)."""
    line = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(points, points))
    eye = sparse.identity(points)
    total = sparse.csr_matrix((points**n_dims, points**n_dims))
    for axis in range(n_dims):
        factors = [line if k == axis else eye for k in range(n_dims)]
        term = factors[0]
        for factor in factors[1:]:
            term = sparse.kron(term, factor)
        total = total + term
    return total.tocsr()


def peer_solve(n_dims: int, points: int):
    matrix, rhs = laplacian(n_dims, points), np.ones(points**n_dims)
    if n_dims == 2:
        return lambda: spsolve(matrix.tocsc(), rhs)
    jacobi = sparse.diags(1 / matrix.diagonal())
    return lambda: cg(matrix, rhs, M=jacobi, rtol=1e-10, maxiter=20_000)[0]


def grids(repeats: int) -> None:
    print(f"{'grid':>8} {'cells':>8} {'generator s':>12} {'MFPT solve s':>13} {'committor s':>12} "
          f"{'Laplacian s':>12} {'matvec s':>10} {'solve/Laplacian':>16}")
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
    peer, _ = best(peer_solve(n_dims, points), repeats)
    vector = np.ones(generator.shape[0])
    floor, _ = best(lambda: generator @ vector, max(repeats, 10))
    size = "x".join([str(points)] * n_dims)
    print(f"{size:>8} {generator.shape[0]:>8} {build:12.3f} {solve:13.3f} {committor:12.3f} {peer:12.3f} "
          f"{floor:10.2e} {solve / peer:16.2f}")
    peer_name = "scipy spsolve of the Laplacian" if n_dims == 2 else "scipy cg (Jacobi) of the Laplacian"
    record("kinetics", f"MFPT solve on a {size} grid (generator built in {build:.3f} s)", solve, "s",
           peer=f"{peer_name}, same size", peer_value=peer, ratio=peer / solve,
           target="issue 21: kinetics solve time on 100² and 40³ grids (reported, no target)")


def two_dimensional(repeats: int) -> None:
    system = systems.get("correlated_ou")
    x, y = np.linspace(-2, 2, 41), np.linspace(-4, 4, 41)
    z = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)
    data = template([x, y], diffusion=True, names=["x1", "x2"])
    data["drift"].values[:] = system.averaged_drift(z)
    data["diffusion"].values[:] = system.homogenized_diffusion(z)
    data["drift_stderr"].values[:] = 0.05
    data["diffusion_stderr"].values[:] = 0.01
    data["done"].values[:] = True
    closure = Closure(data)
    target = Box((0.5, -4.0), (2.0, 4.0))
    seconds, result = best(lambda: passage(closure, [-1.0, 0.0], target, seed=1), repeats)
    print(f"2-D: passage on a 41x41 closure of correlated_ou, 64 drawn closures on the default mesh: {seconds:.2f} s "
          f"(MFPT {result['mfpt']:.4g} ± {result['mfpt_stderr']:.2g})")
    record("kinetics", "2-D passage with 64 drawn closures (correlated_ou, default mesh)", seconds, "s")


def one_dimensional(repeats: int) -> None:
    grid = np.linspace(-2.0, 1.0, 41)
    data = template(grid, diffusion=True)
    data["drift"].values[:, 0] = -(grid**3 - 2 * grid + 0.2)
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
    record("kinetics", "1-D MFPT by quadrature with 64 drawn closures", quadrature, "s",
           peer="500 closed-SDE first passages (Euler-Maruyama, dt = 1e-3)", peer_value=simulated,
           ratio=simulated / quadrature)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    grids(args.repeats)
    two_dimensional(args.repeats)
    one_dimensional(args.repeats)


if __name__ == "__main__":
    main()
