"""Gaussian increments that depend only on (seed, walker, step).

Walkers are grouped in blocks of :data:`WALKERS_PER_BLOCK`; block b draws its noise from its own generator,
seeded by the b-th child of the seed's ``numpy.random.SeedSequence``, in (step, walker, m) order. A block
always draws all its rows, so the increments of walker i do not change when walkers are added or removed,
and a run of n steps is a prefix of a run of n + k steps. ``first`` places the walkers of a call at an
offset in that numbering, so a slice of walkers can be simulated apart from the rest with identical
increments (umbrella windows run together or one per task).

float64 draws on the CPU come from numpy: PCG64 bits, normals by the ziggurat of
``numpy.random.Generator.standard_normal`` (Marsaglia & Tsang 2000), twice the rate of ``torch.randn``'s
Box–Muller in float64, drawn straight into the memory of the torch buffer the steps read. A block's stream is
one sequence, whatever the number of steps drawn per call: one block draws :data:`STEPS_PER_CHUNK` steps per
call, several blocks a step at a time (a block's rows of one step are contiguous, and a step of the whole
ensemble stays in cache). float32 draws (mixed precision: 2.5 times numpy's rate on the CPU) and all draws on
CUDA come from torch generators, each block drawing chunks ``(STEPS_PER_CHUNK, WALKERS_PER_BLOCK, m)``. The
stream therefore depends on the device and on the dtype of the draws; increments are handed out as float64
either way (float32 draws are widened while they are copied into place).
"""

from __future__ import annotations

import numpy as np
import torch

from ..seeding import SeedLike, child, child_int

WALKERS_PER_BLOCK = 1024
STEPS_PER_CHUNK = 16


class BlockNoise:
    """Standard normal increments of shape ``(walkers, m)``, one call per time step. A call's increments stay
    as they were drawn until the call after next (two buffers of a chunk take turns), so a scheme may keep the
    previous step's noise without copying it."""

    def __init__(self, seed: SeedLike, walkers: int, m: int, device: torch.device, dtype: torch.dtype, first: int = 0):
        first_block = first // WALKERS_PER_BLOCK
        n_blocks = (first + walkers - 1) // WALKERS_PER_BLOCK + 1 - first_block
        blocks = range(first_block, first_block + n_blocks)
        rows = [slice(b * WALKERS_PER_BLOCK, (b + 1) * WALKERS_PER_BLOCK) for b in range(n_blocks)]
        self._numpy = device.type == "cpu" and dtype == torch.float64
        self._chunk = 1 if self._numpy and n_blocks > 1 else STEPS_PER_CHUNK
        self._dtype = dtype
        self._buffers = torch.empty((2, self._chunk, n_blocks * WALKERS_PER_BLOCK, m), device=device,
                                    dtype=torch.float64)
        offset = first - first_block * WALKERS_PER_BLOCK
        self._steps = [buffer[:, offset : offset + walkers].unbind(0) for buffer in self._buffers]  # views per step
        if self._numpy:  # per buffer, each block's generator and its rows of the chunk (contiguous)
            generators = [np.random.Generator(np.random.PCG64(child(seed, b))) for b in blocks]
            self._draws = [list(zip(generators, [buffer.numpy()[:, block] for block in rows], strict=True))
                           for buffer in self._buffers]
        else:
            generators = [torch.Generator(device=device).manual_seed(child_int(seed, b)) for b in blocks]
            self._draws = [list(zip(generators, [buffer[:, block] for block in rows], strict=True))
                           for buffer in self._buffers]
        self._turn, self._next = 1, self._chunk

    def _refill(self) -> None:
        """Draw the next chunk ``(steps, rows, m)`` of every block into the other buffer."""
        self._turn ^= 1
        draws = self._draws[self._turn]
        if self._numpy:
            for generator, out in draws:
                generator.standard_normal(out=out)  # straight into the torch buffer: no copy
        elif len(draws) == 1 and self._dtype == torch.float64:
            torch.randn(draws[0][1].shape, generator=draws[0][0], out=draws[0][1])
        else:
            for generator, out in draws:
                out.copy_(torch.randn(out.shape, generator=generator, dtype=self._dtype, device=out.device))
        self._next = 0

    def __call__(self) -> torch.Tensor:
        if self._next == self._chunk:
            self._refill()
        increments = self._steps[self._turn][self._next]
        self._next += 1
        return increments
