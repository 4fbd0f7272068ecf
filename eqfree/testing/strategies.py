"""hypothesis strategies for property tests of users' own operators and closures.

    from hypothesis import given
    from eqfree.testing.strategies import cv_values, seeds

    @given(z=cv_values(my_lift), seed=seeds())
    def test_my_lift(z, seed):
        check_micro_macro_consistency(my_lift, my_restrict, z, seed=seed, tolerance=1e-9)
"""

from __future__ import annotations

from ..errors import InputError

try:
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError:
    raise ImportError("eqfree.testing.strategies needs hypothesis: pip install 'eqfree[test]'") from None


import numpy as np
import xarray as xr

from ..closures.store import template
from ..operators import FunctionLift


def cv_values(lift=None, *, low: float | None = None, high: float | None = None) -> st.SearchStrategy[float]:
    """Finite CV values in [low, high]; by default the lift's ``valid_range``."""
    if low is None or high is None:
        valid = None if lift is None else lift.valid_range
        if valid is None:
            raise InputError("give low and high, or a lift with a valid_range")
        low, high = (valid[0] if low is None else low), (valid[1] if high is None else high)
    if not low <= high:
        raise InputError(f"need low <= high, got [{low}, {high}]")
    return st.floats(float(low), float(high), allow_nan=False, allow_infinity=False)


def seeds() -> st.SearchStrategy[int]:
    """Explicit non-negative integer seeds."""
    return st.integers(0, 2**63 - 1)


def cv_grids(low: float = -10.0, high: float = 10.0, *, min_size: int = 2, max_size: int = 20):
    """Strictly increasing grids of CV values in [low, high]."""
    values = st.lists(st.floats(low, high, allow_nan=False, allow_infinity=False), min_size=min_size,
                      max_size=max_size, unique=True)
    return values.map(lambda v: np.asarray(sorted(v), dtype=float))  # unique, so strictly increasing


@st.composite
def closure_datasets(draw, *, diffusion: bool | None = None) -> xr.Dataset:
    """Closure datasets (the layout of :mod:`eqfree.closures.store`) with some points done, some not, and attrs."""
    grid = draw(cv_grids())
    with_diffusion = draw(st.booleans()) if diffusion is None else diffusion
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20)
    attrs = draw(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), text, max_size=3))
    dataset = template(grid, diffusion=with_diffusion, cv_units=draw(st.sampled_from(["1", "nm", "rad"])),
                       time_units=draw(st.sampled_from(["1", "ps"])), attrs=attrs)
    done = draw(arrays(bool, grid.size))
    finite = st.floats(-1e6, 1e6, allow_nan=False)
    for name in dataset.data_vars:
        if name in ("done", "n_samples"):
            continue
        values = draw(arrays(float, dataset[name].shape, elements=finite if "drift" in name else st.floats(0, 1e6)))
        dataset[name].values[done] = values[done]
    dataset["n_samples"].values[done] = draw(arrays(np.int64, grid.size, elements=st.integers(2, 10**6)))[done]
    dataset["done"].values[:] = done
    return dataset


@st.composite
def perturbed_lifts(draw, lift, *, min_factor: float = 1.2, max_factor: float = 2.0):
    """``(factor, perturbed)``: ``lift`` with every coordinate's spread about its mean over the draw scaled by
    ``factor`` ∈ [min_factor, max_factor] or its inverse (the fast variance off by factor²; coordinates the lift
    pins at z keep it) — lifts a calibrated check should reject."""
    if not 1 < min_factor <= max_factor:
        raise InputError(f"need 1 < min_factor <= max_factor, got {min_factor}, {max_factor}")
    factor = draw(st.floats(min_factor, max_factor))
    factor = factor if draw(st.booleans()) else 1 / factor

    def perturbed(z, n, *, seed):
        x = np.asarray(lift(z, n, seed=seed), dtype=float)
        mean = x.mean(axis=0)
        return mean + factor * (x - mean)

    return factor, FunctionLift(perturbed, valid_range=lift.valid_range)
