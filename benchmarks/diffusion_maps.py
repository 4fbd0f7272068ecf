"""Fit time and peak memory of eqfree's sparse diffusion maps on an S-curve, beside datafold and pydiffmap.

Every fit runs in a fresh subprocess, which reports its wall time and peak resident memory (the increase
over the process's size before the fit, and the whole, which for eqfree includes ~330 MB of torch loaded
by ``import eqfree``). Peers run from ``--peers-python`` (default: this interpreter). datafold 2.0.2 pins
numpy < 1.27 and scipy 1.11, so it needs its own environment (``pip install datafold==2.0.2``); pydiffmap
installs beside eqfree. eqfree and datafold get the same points, kernel exp(−d²/(2ε)), cut-off radius,
α = 1 and 10 nontrivial eigenpairs: max |Δλ| is taken against datafold. pydiffmap has no cut-off kernel:
it runs its k-nearest-neighbour kernel (k = 64) with its ε chosen so that its exp(−d²/(4ε)) is the same
Gaussian; its eigenvalues (of (P − I)/ε) differ by the truncation and are not compared.

Target (issue 20): eqfree ≥ 1.5× faster than the fastest peer at N = 5e4, eigenvalues equal to datafold's
within 1e-8, in ≤ 500 MB (the peak resident memory of the whole process, torch included). Each figure goes to
build/bench.json (``machine.record``). Where the time goes (cProfile, N = 5e4): ~570 Lanczos products with S
(its ~9e6 stored values, upper triangle and diagonal), nearly all of it; the KD-tree pairs and the in-place
normalisation a few seconds; ARPACK's own updates ~1 s on one BLAS thread.

    python benchmarks/diffusion_maps.py [--peers-python /path/to/venv/bin/python] [--sizes 20000 50000]
                                        [--single-blas-thread]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from machine import cpu_model, record

EPSILON, CUT_OFF, EIGENPAIRS = 2e-3, 0.15, 10
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

MEASURE = """
import json, resource, sys, time
import numpy as np
X = np.load(sys.argv[1])
{setup}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
{fit}
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(seconds=elapsed, peak_mb=peak / 1024, added_mb=(peak - before) / 1024,
                      eigenvalues=list(map(float, eigenvalues)))))
"""

EQFREE = dict(
    setup="from eqfree.restrict import DiffusionMaps",
    fit=f"eigenvalues = DiffusionMaps(n_components=1, epsilon={EPSILON}, cut_off={CUT_OFF}, "
        f"n_eigenpairs={EIGENPAIRS}, kernel='sparse', select='leading').fit(X, seed=0).eigenvalues_",
)
DATAFOLD = dict(  # the kernel goes to DiffusionMaps itself: one left on a PCManifold is ignored (default ε = 1)
    setup="import datafold.dynfold as dfold, datafold.pcfold as pfold",
    fit=f"kernel = pfold.GaussianKernel(epsilon={EPSILON}, distance=dict(cut_off={CUT_OFF}))\n"
        f"eigenvalues = sorted(dfold.DiffusionMaps(kernel=kernel, n_eigenpairs={EIGENPAIRS + 1}, alpha=1)"
        ".fit(X).eigenvalues_.real, reverse=True)",
)
PYDIFFMAP = dict(
    setup="from pydiffmap import diffusion_map",
    fit=f"eigenvalues = diffusion_map.DiffusionMap.from_sklearn(n_evecs={EIGENPAIRS}, epsilon={EPSILON / 2}, "
        "alpha=1.0, k=64).fit(X).evals",
)


def s_curve(n: int, seed: int = 0) -> np.ndarray:
    """Points on the S-curve: t ~ U(−3π/2, 3π/2), height ~ U(0, 2): (sin t, h, sign(t)(cos t − 1))."""
    rng = np.random.default_rng(seed)
    t = 3 * np.pi * (rng.uniform(size=n) - 0.5)
    return np.column_stack([np.sin(t), 2 * rng.uniform(size=n), np.sign(t) * (np.cos(t) - 1)])


def measure(python: str, code: dict, points: Path, single_blas_thread: bool = False) -> dict | None:
    env = dict(os.environ, **({name: "1" for name in BLAS_THREADS} if single_blas_thread else {}))
    result = subprocess.run([python, "-c", MEASURE.format(**code), str(points)], capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode
        print(f"  ({python} failed: {reason})")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000])
    parser.add_argument("--peers-python", default=sys.executable,
                        help="python of an environment with datafold and pydiffmap (default: this one)")
    parser.add_argument("--single-blas-thread", action="store_true",
                        help="run every fit with one BLAS thread (eqfree's eigensolver always uses one; on a busy "
                             "machine OpenBLAS threads spin and slow the peers' ARPACK many times over)")
    args = parser.parse_args()
    print(f"S-curve, epsilon = {EPSILON}, cut-off = {CUT_OFF}, alpha = 1, {EIGENPAIRS} eigenpairs; "
          "one subprocess per fit")
    print(f"machine: {cpu_model()}, load {os.getloadavg()[0]:.1f}" + (", one BLAS thread" * args.single_blas_thread))
    print(f"{'N':>7} {'tool':>10} {'seconds':>8} {'added MB':>9} {'peak MB':>8} {'speed-up':>9} {'max|dl|':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            points = Path(folder) / f"s_curve_{n}.npy"
            np.save(points, s_curve(n))
            single = args.single_blas_thread
            mode = " (one BLAS thread)" if single else ""
            ours = measure(sys.executable, EQFREE, points, single)
            peers = {"datafold": measure(args.peers_python, DATAFOLD, points, single),
                     "pydiffmap": measure(args.peers_python, PYDIFFMAP, points, single)}
            for name, row in {"eqfree": ours, **peers}.items():
                if row is None:
                    continue
                speedup = row["seconds"] / ours["seconds"] if name != "eqfree" else 1.0
                delta = ""
                if name == "eqfree" and peers.get("datafold"):
                    gap = np.abs(np.array(ours['eigenvalues']) - np.array(peers['datafold']['eigenvalues']))
                    delta = f"{np.max(gap):9.1e}"
                print(f"{n:7d} {name:>10} {row['seconds']:8.2f} {row['added_mb']:9.0f} {row['peak_mb']:8.0f} "
                      f"{speedup:8.1f}x {delta}")
            timed = {name: row["seconds"] for name, row in peers.items() if row is not None}
            if ours and timed:
                fastest = min(timed, key=timed.get)
                ratio = timed[fastest] / ours["seconds"]
                print(f"{n:7d} fastest peer ({fastest}) / eqfree: {ratio:.2f}x (target >= 1.5x)")
                record("diffusion_maps", f"S-curve fit, N = {n}, 10 eigenpairs{mode}", ours["seconds"], "s",
                       peer=fastest, peer_value=timed[fastest], ratio=ratio, target=">= 1.5x the fastest peer",
                       met=ratio >= 1.5)
            if ours:
                record("diffusion_maps", f"S-curve fit, N = {n}: peak resident memory", ours["peak_mb"], "MB",
                       target="<= 500 MB", met=ours["peak_mb"] <= 500)
                if peers.get("datafold"):
                    gap = np.abs(np.array(ours["eigenvalues"]) - np.array(peers["datafold"]["eigenvalues"])).max()
                    record("diffusion_maps", f"S-curve fit, N = {n}: max |eigenvalue - datafold's|", float(gap), "",
                           peer="datafold", target="<= 1e-8", met=gap <= 1e-8)
    print("speed-up: the tool's time over eqfree's; max|dl|: eqfree against datafold, all 11 eigenvalues")


if __name__ == "__main__":
    main()
