"""Explicit, executor-independent seeding through ``numpy.random.SeedSequence``.

Every random consumer receives its own child sequence, addressed by a fixed index, so the numbers a
task draws depend on the seed and on the task's index only — not on the order, the executor or
the number of workers. Children are built from ``(entropy, spawn_key + (i,))`` without mutating
the parent, so handing the same seed twice gives the same children twice.
"""

from __future__ import annotations

import numpy as np

from .errors import InputTypeError

SeedLike = int | np.random.SeedSequence


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """An explicit seed as a SeedSequence; ``None`` and other types are refused."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise InputTypeError(
        f"seed must be a non-negative int or a numpy.random.SeedSequence, got {seed!r}; "
        "eqfree never draws an implicit seed: pass one explicitly"
    )


def child(seed: SeedLike, *indices: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``seed`` (what ``seed.spawn`` would give, without mutating it);
    several indices address a grandchild, ``child(s, i, j) == child(child(s, i), j)``."""
    seed = as_seed_sequence(seed)
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, *indices))


def child_int(seed: SeedLike, index: int) -> int:
    """A 63-bit integer seed (e.g. for ``torch.Generator.manual_seed``) from the ``index``-th child."""
    return int(child(seed, index).generate_state(1, np.uint64)[0] >> np.uint64(1))
