"""Gaussian increments that depend only on (seed, walker, step).

Walkers are grouped in blocks of :data:`WALKERS_PER_BLOCK`; block b draws its noise from its own
torch generator, seeded by the b-th child of the seed's ``numpy.random.SeedSequence``, in chunks
of :data:`STEPS_PER_CHUNK` steps of shape ``(steps, WALKERS_PER_BLOCK, m)``. A block always draws
all its rows, so the increments of walker i do not change when walkers are added or removed, and a
run of n steps is a prefix of a run of n + k steps. ``first`` places the walkers of a call at an
offset in that numbering, so a slice of walkers can be simulated apart from the rest with
identical increments (umbrella windows run together or one per task). The stream depends on the device (CPU and CUDA
generators differ) and on the dtype of the draws; increments are handed out as float64 either way
(float32 draws are widened while they are copied into place).
"""

from __future__ import annotations

import torch

from ..seeding import SeedLike, child_int

WALKERS_PER_BLOCK = 1024
STEPS_PER_CHUNK = 16


class BlockNoise:
    """Standard normal increments of shape ``(walkers, m)``, one call per time step."""

    def __init__(self, seed: SeedLike, walkers: int, m: int, device: torch.device, dtype: torch.dtype, first: int = 0):
        first_block = first // WALKERS_PER_BLOCK
        n_blocks = (first + walkers - 1) // WALKERS_PER_BLOCK + 1 - first_block
        self._generators = [
            torch.Generator(device=device).manual_seed(child_int(seed, first_block + b)) for b in range(n_blocks)
        ]
        self._rows = slice(first - first_block * WALKERS_PER_BLOCK, first - first_block * WALKERS_PER_BLOCK + walkers)
        self._shape = (STEPS_PER_CHUNK, WALKERS_PER_BLOCK, m)
        self._buffer = torch.empty((STEPS_PER_CHUNK, n_blocks * WALKERS_PER_BLOCK, m), device=device,
                                   dtype=torch.float64)
        self._scratch = torch.empty(self._shape, device=device, dtype=dtype)
        self._steps = self._buffer[:, self._rows].unbind(0)  # one view per step of a chunk, refilled in place
        self._next = STEPS_PER_CHUNK

    def _refill(self) -> None:
        if self._buffer.shape == self._scratch.shape and self._buffer.dtype == self._scratch.dtype:
            torch.randn(self._shape, generator=self._generators[0], out=self._buffer)  # one float64 block: no copy
        else:
            for b, generator in enumerate(self._generators):
                torch.randn(self._shape, generator=generator, out=self._scratch)
                self._buffer[:, b * WALKERS_PER_BLOCK : (b + 1) * WALKERS_PER_BLOCK] = self._scratch
        self._next = 0

    def __call__(self) -> torch.Tensor:
        if self._next == STEPS_PER_CHUNK:
            self._refill()
        increments = self._steps[self._next]
        self._next += 1
        return increments
