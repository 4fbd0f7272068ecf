"""Molecular dynamics with eqfree: OpenMM throughput, conditional conformations at ψ = 4 rad, and
generator-seeded umbrella runs on ψ (Crabtree et al., section 5, Figures 7–8).

    python benchmarks/md.py [--quick] [--epochs 3000] [--seeds 5] [--repeats 5] [--only-throughput]

System: alanine dipeptide (``systems.get("alanine_dipeptide")``: Amber14 + OBC2, Langevin at 300 K,
1 fs, friction 1/ps), on the system's default OpenMM platform (Reference: for 22 atoms the fastest on a CPU).

1. Throughput: ns/day of eqfree's evolver (``system.evolver()``, one walker) against plain OpenMM (a
   ``LangevinMiddleIntegrator`` and a ``Context`` on the same ``System`` and platform) stepping the
   same steps with the same save interval (positions copied to numpy at every save), timed in
   2 × ``--repeats`` back-to-back pairs (order alternating, so slow drifts of other load cancel).
   Overhead = median over pairs of t_eqfree / t_plain − 1, target < 5 %.
2. Time to 10⁵ conformations at ψ = 4 rad:
   - umbrella sampling (κ = 50 kJ/mol/rad², ``UmbrellaSampling(system.evolver(), system.cv("psi"), ...)``): one
     window measured, then
     t(10⁵) = t_warm-up + 10⁵ · g · save_every / (steps/s), g the statistical inefficiency of ψ in
     saved frames (one decorrelated sample per g saves), extrapolated for one core;
   - CcGAN: the Table 3 networks, Kabsch-aligned onto x0, trained on umbrella windows across ψ (the
     bias acts on ψ alone, so the law of x given ψ is the unbiased one); 10⁵ samples measured (median
     of ``--repeats`` after a warm-up call), its training time and label consistency reported.
3. Time to accuracy at ψ = 4 (κ = 50): W1 of the φ marginal (φ wrapped into [0, 2π): the cut at φ = 0,
   where the molecule is rarely found) of a window's samples against a reference window (8 walkers
   started from the training frames nearest ψ = 4). Two ways to spend the same fine steps:
   - single: one run of ``LONG`` steps from the minimum x0 (ψ ≈ 2.7 rad), warm-up detected and discarded;
   - seeded: ``RUNS`` runs of ``LONG / RUNS`` steps from CcGAN conformations at ψ = 4
     (``AssistedUmbrella.from_umbrella``), nothing discarded.
   The W1 curves against fine steps per walker are averaged over ``--seeds``; target: the single
   run's final mean W1 (and, when the seeded runs end less accurate, the accuracy both reach); for
   each, the steps per walker (the wall-clock when the runs go side by side) after which the mean
   curve stays below it; ratio single / seeded (and in total fine steps).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time

import numpy as np
import torch
from machine import cpu_model, record

from eqfree import systems
from eqfree.evolve.molecular import import_openmm
from eqfree.lift import AssistedUmbrella, CcGAN, UmbrellaSampling
from eqfree.metrics import label_consistency, wasserstein_marginals
from eqfree.periodic import wrap_into

Z, KAPPA, LABEL_CUT = 4.0, 50.0, -1.9
N_SAMPLES = 100_000
SAVE_EVERY = 20  # 20 fs between saved frames
GRID = (2.0, 2.4, 2.8, 3.2, 3.6, 4.0)  # training windows across the β basin in ψ (rad)
RUNS = 10
OVERHEAD_TARGET = 0.05


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def ns_per_day(steps: int, dt_ps: float, seconds: float) -> float:
    return steps * dt_ps * 1e-3 / seconds * 86_400


# -- 1. throughput ------------------------------------------------------------------------------------------
@functools.cache
def plain_context(system):
    """One OpenMM context for ``system``, built on first use."""
    openmm = import_openmm()
    integrator = openmm.LangevinMiddleIntegrator(system.temperature, system.friction, system.dt)
    platform = system.params["platform"]
    properties = {"Threads": "1"} if platform == "CPU" else {}
    return openmm.Context(system.openmm_system, integrator, openmm.Platform.getPlatformByName(platform), properties)


def plain_openmm(system, x0: np.ndarray, steps: int, save_every: int, seed: int) -> np.ndarray:
    """The same dynamics without eqfree: context built once (like the evolver's, per thread), then one
    walker: seed, positions, velocities, step and copy the positions out at every save."""
    openmm = import_openmm()
    context = plain_context(system)
    context.getIntegrator().setRandomNumberSeed(seed)
    context.reinitialize()
    context.setPositions(x0.reshape(-1, 3))
    context.setVelocitiesToTemperature(system.temperature, seed)
    out = np.empty((steps // save_every + 1, x0.size))
    out[0] = x0
    for frame in range(1, len(out)):
        context.getIntegrator().step(save_every)
        positions = context.getState(getPositions=True).getPositions(asNumpy=True)
        out[frame] = positions.value_in_unit(openmm.unit.nanometer).reshape(-1)
    return out


def throughput(system, steps: int, pairs: int) -> None:
    evolver, x0 = system.evolver(), system.x0
    runs = {"eqfree": lambda seed: evolver(x0[None], steps, seed=seed, save_every=SAVE_EVERY),
            "plain": lambda seed: plain_openmm(system, x0, steps, SAVE_EVERY, seed + 1)}
    runs["eqfree"](0), runs["plain"](0)  # warm-up: contexts built
    seconds = {"eqfree": [], "plain": []}
    for r in range(pairs):  # pairs back to back, the order alternating
        for name in (("plain", "eqfree") if r % 2 else ("eqfree", "plain")):
            seconds[name].append(timed(lambda name=name, r=r: runs[name](r + 1))[1])
    print(f"\n1. throughput: {steps:,} steps of one walker (dt = {system.dt * 1e3:g} fs, positions saved every "
          f"{SAVE_EVERY} steps), {pairs} back-to-back pairs of calls; median [min-max]")
    print(f"{'':>28} {'seconds':>24} {'steps/s':>9} {'ns/day':>8}")
    for name, label in (("plain", "plain OpenMM (Context)"), ("eqfree", "eqfree OpenMMEvolver")):
        values = np.array(seconds[name])
        print(f"{label:>28} {f'{np.median(values):.3f} [{values.min():.3f}-{values.max():.3f}]':>24} "
              f"{steps / np.median(values):9.0f} {ns_per_day(steps, system.dt, np.median(values)):8.2f}")
    ratio = np.array(seconds["eqfree"]) / np.array(seconds["plain"])
    overhead = float(np.median(ratio)) - 1
    print(f"   wrapper overhead, median of the pairs' ratios: {100 * overhead:+.1f} % "
          f"[{100 * (ratio.min() - 1):+.1f} to "
          f"{100 * (ratio.max() - 1):+.1f} %] (target < {100 * OVERHEAD_TARGET:.0f} %: "
          f"{'met' if overhead < OVERHEAD_TARGET else 'NOT met'}); fastest calls: "
          f"{100 * (min(seconds['eqfree']) / min(seconds['plain']) - 1):+.1f} %")
    eqfree, plain = (float(np.median(seconds[name])) for name in ("eqfree", "plain"))
    record("md", f"alanine dipeptide, {steps:,} steps of one walker: ns/day (wrapper overhead {100 * overhead:+.1f} %, "
           "median of pairs)", ns_per_day(steps, system.dt, eqfree), "ns/day", peer="plain OpenMM Context",
           peer_value=ns_per_day(steps, system.dt, plain), ratio=1 / (1 + overhead),
           target=f"overhead < {100 * OVERHEAD_TARGET:.0f} %", met=overhead < OVERHEAD_TARGET)


# -- 2. conformations at ψ = 4 ---------------------------------------------------------------------------------
def training_windows(system, window_steps: int, walkers: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames after warm-up of umbrella windows (κ = 50) at :data:`GRID`, labels wrap_into(ψ, −1.9),
    and the seconds it took."""
    umbrella = UmbrellaSampling(system.evolver(), system.cv(), KAPPA, n_steps=window_steps, n_walkers=walkers,
                                save_every=SAVE_EVERY, initial=system.x0)
    start, frames = time.perf_counter(), []
    for k, z in enumerate(GRID):
        window = umbrella.window(z, seed=100 + k)
        frames.append(window.x.values[window.attrs["warmup_frames"] + 1:].reshape(-1, system.dim))
    X = np.concatenate(frames)
    y = wrap_into(system.cv("psi")(X), LABEL_CUT)
    kept = y > GRID[0] - 1.0  # drop the few frames pushed past the cut (ψ > −110°, over the barrier)
    return X[kept], y[kept], time.perf_counter() - start


def umbrella_extrapolation(system, steps: int, walkers: int) -> dict:
    """One window at ψ = 4 from x0: steps/s, warm-up, inefficiency g, and t(10⁵) extrapolated."""
    umbrella = UmbrellaSampling(system.evolver(), system.cv(), KAPPA, n_steps=steps, n_walkers=walkers,
                                save_every=SAVE_EVERY, initial=system.x0)
    window, seconds = timed(lambda: umbrella.window(Z, seed=7))
    rate = steps * walkers / seconds
    warm_steps = window.attrs["warmup_frames"] * SAVE_EVERY
    g = window.attrs["inefficiency"]
    return {"steps/s": rate, "warmup steps": warm_steps, "g": g,
            "seconds": (warm_steps + N_SAMPLES * g * SAVE_EVERY) / rate,
            "samples": window.x.values[window.attrs["warmup_frames"]:].reshape(-1, system.dim)}


def conformations(system, gan: CcGAN, train_seconds: float, n_data: int, data_seconds: float,
                  window_steps: int, repeats: int) -> None:
    us = umbrella_extrapolation(system, window_steps, 4)
    gan.sample(Z, N_SAMPLES, seed=0)
    times = np.array([timed(lambda r=r: gan.sample(Z, N_SAMPLES, seed=r + 1))[1] for r in range(repeats)])
    scaled = torch.randn(N_SAMPLES, system.dim)
    with torch.inference_mode():
        align = float(np.median([timed(lambda: gan._aligned(scaled))[1] for _ in range(repeats)]))
    samples = gan.sample(Z, 10_000, seed=99)
    phi = lambda x: wrap_into(system.cv("phi")(x), 0.0)  # noqa: E731
    psi = system.cv("psi")
    print(f"\n2. time to {N_SAMPLES:.0e} conformations at psi = {Z:g} rad")
    print(f"   umbrella sampling, kappa = {KAPPA:g}: one window of 4 walkers x {window_steps:,} steps from x0: "
          f"{us['steps/s']:.0f} steps/s, warm-up {us['warmup steps']:,} steps, inefficiency g = {us['g']:.1f} frames "
          f"of {SAVE_EVERY} steps")
    print(f"   CcGAN: Table 3 networks, noise_dim {gan.noise_dim}, {gan.n_epochs} epochs, aligned "
          f"to x0; trained in {train_seconds:.0f} s on {n_data} frames of {len(GRID)} windows ({data_seconds:.0f} s "
          "of MD)")
    print(f"{'':>34} {'seconds':>24} {'US / this':>10}")
    print(f"{'US (extrapolated, 1 core)':>34} {us['seconds']:24.3g} {1.0:10.3g}")
    median = float(np.median(times))
    print(f"{'CcGAN sample (measured)':>34} {f'{median:.3f} [{times.min():.3f}-{times.max():.3f}]':>24} "
          f"{us['seconds'] / median:10.3g}")
    print(f"{'  of which Kabsch alignment':>34} {align:24.3f}")
    record("md", f"CcGAN: {N_SAMPLES:.0e} conformations at psi = {Z:g} rad (sampling alone)", median, "s",
           peer="umbrella sampling, extrapolated (1 core)", peer_value=us["seconds"], ratio=us["seconds"] / median)
    total = median + train_seconds + data_seconds
    record("md", f"CcGAN: {N_SAMPLES:.0e} conformations at psi = {Z:g} rad, data and training included", total, "s",
           peer="umbrella sampling, extrapolated (1 core)", peer_value=us["seconds"], ratio=us["seconds"] / total)
    print(f"{'CcGAN incl. data + training':>34} {median + train_seconds + data_seconds:24.3g} "
          f"{us['seconds'] / (median + train_seconds + data_seconds):10.3g}")
    print(f"   label consistency mean |psi - {Z:g}|: "
          f"CcGAN {label_consistency(psi, samples, Z, period=2 * math.pi):.3f} "
          f"rad, US window {label_consistency(psi, us['samples'], Z, period=2 * math.pi):.3f} rad "
          f"(width 1/sqrt(beta kappa) = {1 / math.sqrt(system.beta * KAPPA):.3f}); "
          f"W1(phi) CcGAN vs US window: {wasserstein_marginals(phi(samples), phi(us['samples']))[0]:.3f} rad")
    pairs, lengths = system.bonds()
    inside = np.abs(system.bond_lengths(samples) - lengths) < 0.01
    print(f"   bonds within 0.01 nm of the force field: CcGAN {inside.mean():.3f}, US window "
          f"{(np.abs(system.bond_lengths(us['samples']) - lengths) < 0.01).mean():.3f}")


# -- 3. seeded runs against one long run ---------------------------------------------------------------------------
def w1_curve(phi: np.ndarray, warm: int, depths: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """W1 of the pooled φ of frames ``warm`` … d/save_every of every walker, at each depth d (steps per
    walker); inf where no frame past the warm-up is reached yet."""
    ends = depths // SAVE_EVERY + 1
    return np.array([wasserstein_marginals(phi[warm:end].reshape(-1), reference)[0] if end > warm else math.inf
                     for end in ends])


def stays_below(depths: np.ndarray, curve: np.ndarray, target: float) -> float:
    """The depth after which ``curve`` stays at or below ``target`` (inf: not within the run)."""
    above = np.flatnonzero(curve > target)
    if above.size == 0:
        return float(depths[0])
    return float(depths[above[-1] + 1]) if above[-1] + 1 < len(depths) else math.inf


def seeded_vs_long(system, gan: CcGAN, data: np.ndarray, labels: np.ndarray, long_steps: int, seeds: int,
                   reference_steps: int) -> None:
    phi = lambda x: wrap_into(system.cv("phi")(x), 0.0)  # noqa: E731
    nearest = data[np.argsort(np.abs(labels - Z))[:8]]
    reference = UmbrellaSampling(system.evolver(), system.cv(), KAPPA, n_steps=reference_steps, n_walkers=8,
                                 initial=nearest, save_every=SAVE_EVERY).window(Z, seed=1234)
    ref_phi = phi(reference.x.values[reference.attrs["warmup_frames"]:].reshape(-1, system.dim))
    single = UmbrellaSampling(system.evolver(), system.cv(), KAPPA, n_steps=long_steps, n_walkers=10,
                              save_every=SAVE_EVERY, initial=system.x0)  # run with n_walkers=1 below
    seeded = AssistedUmbrella.from_umbrella(gan, single, n_walkers=RUNS, n_steps=long_steps // RUNS)
    depths = {"single": np.linspace(0, long_steps, 41).astype(int)[1:],
              "seeded": np.linspace(0, long_steps // RUNS, 41).astype(int)[1:]}
    curves, seconds, starts = {"single": [], "seeded": []}, {"single": [], "seeded": []}, []
    for seed in range(seeds):
        window, t = timed(lambda seed=seed: single.window(Z, seed=seed, n_walkers=1))
        curves["single"].append(w1_curve(phi(window.x.values), window.attrs["warmup_frames"], depths["single"],
                                         ref_phi))
        seconds["single"].append(t / long_steps)
        window, t = timed(lambda seed=seed: seeded.run(Z, seed=seed))
        curves["seeded"].append(w1_curve(phi(window.x.values), 0, depths["seeded"], ref_phi))
        seconds["seeded"].append(t / long_steps)
        starts.append(window.attrs["initial_label_error"])
    mean = {name: np.mean(found, axis=0) for name, found in curves.items()}
    target = float(mean["single"][-1])
    print(f"\n3. W1(phi) at psi = {Z:g} (kappa = {KAPPA:g}) against a reference window (8 walkers x "
          f"{reference_steps:,} steps from the training frames nearest psi = {Z:g}), curves averaged over {seeds} "
          f"seeds; the same {long_steps:,} fine steps as 1 run from x0 (warm-up discarded) or {RUNS} runs seeded "
          f"by the CcGAN (starts {np.mean(starts):.3f} rad from psi = {Z:g} on average, nothing discarded)")
    print(f"   target: the single run's final mean W1, {target:.3f} rad")
    print(f"{'':>8} {'final W1 mean [min-max]':>25} {'steps/walker to stay below':>27} {'us/step':>8}")
    depth = {}
    for name in curves:
        final = np.array([curve[-1] for curve in curves[name]])
        depth[name] = stays_below(depths[name], mean[name], target)
        print(f"{name:>8} {f'{final.mean():.3f} [{final.min():.3f}-{final.max():.3f}]':>25} {depth[name]:27,.0f} "
              f"{np.median(seconds[name]) * 1e6:8.0f}")
    ratios(depth, f"the single run's final W1 {target:.3f}")
    common = float(max(mean["single"][-1], mean["seeded"][-1]))
    if common > target:  # the seeded runs end less accurate: compare at the accuracy both reach
        ratios({name: stays_below(depths[name], mean[name], common) for name in mean},
               f"the accuracy both reach, {common:.3f}")


def ratios(depth: dict, target: str) -> None:
    """single / seeded in steps per walker (the wall-clock with the runs side by side) and in total steps."""
    if not math.isfinite(depth["seeded"]):
        print(f"   target {target}: the seeded runs do not stay below it within their length")
        return
    record("md", f"generator-seeded umbrella runs ({RUNS}): steps per walker to stay below {target}",
           depth["seeded"], "steps", peer="one long run", peer_value=depth["single"],
           ratio=depth["single"] / depth["seeded"])
    print(f"   target {target}: single {depth['single']:,.0f} steps, seeded {depth['seeded']:,.0f} steps per run; "
          f"ratio single / seeded {depth['single'] / depth['seeded']:.2f} in wall-clock with the {RUNS} runs side by "
          f"side, {depth['single'] / (RUNS * depth['seeded']):.2f} in total fine steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3000, help="CcGAN training epochs (paper: 40000)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the accuracy study")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--quick", action="store_true", help="smoke run: short MD, 300 epochs, 2 seeds")
    parser.add_argument("--only-throughput", action="store_true", help="part 1 alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = 0.2 if args.quick else 1.0
    if args.quick:
        args.epochs, args.seeds, args.repeats = 300, 2, 2
    system = systems.get("alanine_dipeptide")
    print(f"torch {torch.__version__}, 1 thread; OpenMM {import_openmm().__version__}, {system.params['platform']} "
          f"platform, 1 thread; CPU: {cpu_model()} ({os.cpu_count()} logical cores); load average at start "
          f"{os.getloadavg()[0]:.2f}{'; --quick: shortened run' if args.quick else ''}")
    throughput(system, int(10_000 * scale), 2 * args.repeats)
    if args.only_throughput:
        return

    X, y, data_seconds = training_windows(system, int(10_000 * scale), 4)
    gan = CcGAN(preset="table3", noise_dim=16, n_epochs=args.epochs, lr=5e-4, batch_size=256, align_to=system.x0)
    _, train_seconds = timed(lambda: gan.fit(X, y, seed=0, progress=False))
    conformations(system, gan, train_seconds, len(X), data_seconds, int(10_000 * scale), args.repeats)
    seeded_vs_long(system, gan, X, y, int(40_000 * scale), args.seeds, int(20_000 * scale))
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (other work on these cores slows every timing above)")


if __name__ == "__main__":
    main()
