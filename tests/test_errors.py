"""Bad input is refused at the boundary with a message that says what to do."""

import math

import numpy as np
import pytest
import torch

from eqfree import SDE, DivergenceError, SDEEvolver, euler_maruyama, systems
from eqfree.restrict import Coordinates, parse_coordinate


def ou():
    return SDE(lambda x, t: -x, lambda x, t: torch.ones(x.shape[1], dtype=x.dtype))


@pytest.mark.parametrize("x0", [np.zeros(3), np.zeros((2, 2, 2)), np.zeros((0, 2)), np.zeros((4, 0))])
def test_wrong_initial_shape(x0):
    with pytest.raises(ValueError, match=r"shape \(walkers, dim\)"):
        euler_maruyama(ou(), x0, dt=0.1, n_steps=1, seed=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_initial_state(bad):
    x0 = np.zeros((5, 2))
    x0[3, 1] = bad
    with pytest.raises(ValueError, match=r"finite; walkers \[3\]"):
        euler_maruyama(ou(), x0, dt=0.1, n_steps=1, seed=0)


@pytest.mark.parametrize("dt", [0.0, -0.1, math.nan, math.inf])
def test_bad_time_step(dt):
    with pytest.raises(ValueError, match="dt must be a finite positive"):
        euler_maruyama(ou(), np.zeros((1, 1)), dt=dt, n_steps=1, seed=0)
    with pytest.raises(ValueError, match="dt must be a finite positive"):
        SDEEvolver(ou(), dt)


@pytest.mark.parametrize("name,value", [("n_steps", -1), ("n_steps", 2.5), ("save_every", 0)])
def test_bad_counts(name, value):
    kwargs = {"n_steps": 3, "save_every": 1, name: value}
    with pytest.raises(ValueError, match=name):
        euler_maruyama(ou(), np.zeros((1, 1)), dt=0.1, seed=0, **kwargs)


@pytest.mark.parametrize("seed", [None, -1, 1.5, "7", True])
def test_seed_must_be_explicit(seed):
    with pytest.raises(TypeError, match="seed"):
        euler_maruyama(ou(), np.zeros((1, 1)), dt=0.1, n_steps=1, seed=seed)


def test_field_shapes_are_checked():
    wrong_drift = SDE(lambda x, t: torch.zeros(x.shape[0], 3, dtype=x.dtype), lambda x, t: torch.ones(2, dtype=x.dtype))
    with pytest.raises(ValueError, match="drift returned"):
        euler_maruyama(wrong_drift, np.zeros((4, 2)), dt=0.1, n_steps=1, seed=0)
    wrong_noise = SDE(lambda x, t: -x, lambda x, t: torch.ones(3, dtype=x.dtype))
    with pytest.raises(ValueError, match="diffusion"):
        euler_maruyama(wrong_noise, np.zeros((4, 2)), dt=0.1, n_steps=1, seed=0)
    with pytest.raises(ValueError, match="noise must be one of"):
        SDE(lambda x, t: x, lambda x, t: x, noise="scalar")


def test_divergent_walker_is_named_with_its_step():
    """x' = x² from x0 = 1 blows up at t = 1; only walker 2 starts there."""
    blowup = SDE(lambda x, t: x**2, lambda x, t: torch.zeros(1, dtype=x.dtype))
    x0 = np.array([[0.1], [0.2], [1.0], [0.0]])
    with pytest.raises(DivergenceError, match=r"walker 2 became non-finite at step \d+") as caught:
        euler_maruyama(blowup, x0, dt=0.1, n_steps=1000, seed=0)
    assert caught.value.walker == 2
    # Euler on x' = x² from 1 with dt = 0.1: x_n grows past float64's range a few steps after t = 1
    assert 10 < caught.value.step < 30


def test_unknown_system_and_parameters():
    with pytest.raises(ValueError, match="unknown system 'moons'.*available systems"):
        systems.get("moons")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['a9'\].*valid parameters"):
        systems.get("fast_slow_linear", a9=1.0)
    with pytest.raises(ValueError, match="must be a number"):
        systems.get("caps", a1="fast")
    with pytest.raises(ValueError, match="beta > 0"):
        systems.get("double_well", beta=0)


def test_simulate_checks_walkers_and_initial_state():
    system = systems.get("caps")
    with pytest.raises(ValueError, match="n_walkers"):
        system.simulate(0, 10, seed=0)
    with pytest.raises(ValueError, match=r"x0 for caps must have shape \(3,\)"):
        system.simulate(2, 10, seed=0, x0=[0.0, 1.0])


def test_coordinate_names():
    assert parse_coordinate("x1") == 0 and parse_coordinate("x12") == 11 and parse_coordinate("3") == 3
    for bad in ("x0", "y1", "-1", ""):
        with pytest.raises(ValueError, match="not understood"):
            parse_coordinate(bad)
    with pytest.raises(ValueError, match="out of range"):
        parse_coordinate("x3", dim=2)
    with pytest.raises(ValueError, match="no coordinate x3"):
        Coordinates("x3")(np.zeros((4, 2)))
