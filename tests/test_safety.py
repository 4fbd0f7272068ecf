"""Nothing a user owns is lost and no mistake ends in a traceback: one test per defect of issue 18.

Each test runs the command as a user would and asserts what survives on disk, what was (not) computed and
what is printed; the numbers of a resumed store are checked against the uninterrupted run (same seed, same
numbers)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

import eqfree.cli.closure
import eqfree.cli.lifts
import eqfree.cli.variational
from eqfree import CcGAN, systems
from eqfree.cli import main, parser
from eqfree.cli.main import joined
from eqfree.closures import ConditionalAverageEstimator, ResumeWarning, estimate_closure
from eqfree.errors import OutputExistsError
from eqfree.io import StaleLockWarning, open_zarr, output_lock, write_zarr
from eqfree.version import __version__

EQFREE = [sys.executable, "-m", "eqfree"]


def simulate(path, *extra):
    return main(["simulate", "--system", "caps", "--walkers", "4", "--steps", "10", "--seed", "3",
                 "--out", str(path), "--quiet", *extra])


def closure(path, *extra, walkers="50"):
    return main(["closure", "estimate", "--system", "averaging_cubic", "--cv", "x1", "--estimator", "conditional",
                 "--grid", "-1:1:5", "--walkers", walkers, "--seed", "1", "--out", str(path), "--quiet", *extra])


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "caps.zarr"
    assert simulate(path) == 0
    return path


# -- 1. --overwrite replaces only what eqfree wrote --------------------------------------------------------
@pytest.mark.parametrize("command", ["simulate", "closure", "train-cg"])
def test_a_folder_of_the_users_files_survives_overwrite(tmp_path, capsys, command):
    own = tmp_path / "results"
    own.mkdir()
    (own / "notes.txt").write_text("a week of work")
    run = {"simulate": lambda: simulate(own, "--overwrite"),
           "closure": lambda: closure(own, "--overwrite"),
           "train-cg": lambda: main(["train-cg", "--system", "double_well", "--epochs", "1", "--seed", "0",
                                     "--out", str(own), "--overwrite", "--quiet"])}[command]
    assert run() == 2
    assert "not written by eqfree" in capsys.readouterr().err
    assert [p.name for p in own.iterdir()] == ["notes.txt"] and (own / "notes.txt").read_text() == "a week of work"


def test_a_model_is_never_written_into_a_store_nor_a_store_over_a_model(store, tmp_path, capsys):
    """train-lift and train-cg refuse an existing folder silently before; a zarr store is not a model folder."""
    before = open_zarr(store)["x"].values
    assert main(["train-lift", "--data", str(store), "--cv", "x1", "--method", "score", "--epochs", "1",
                 "--seed", "0", "--out", str(store), "--overwrite", "--quiet"]) == 2  # also its input
    other = tmp_path / "other.zarr"
    assert simulate(other) == 0
    assert main(["train-cg", "--system", "double_well", "--epochs", "1", "--seed", "0", "--out", str(other),
                 "--overwrite", "--quiet"]) == 2
    assert "saved model" in capsys.readouterr().err
    np.testing.assert_array_equal(open_zarr(store)["x"].values, before)
    # an existing model folder needs --overwrite; one holding a user's file is never replaced
    model = tmp_path / "cg"
    command = ["train-cg", "--system", "double_well", "--widths", "4,4,4", "--epochs", "2", "--epochs-at-target",
               "0", "--samples", "10", "--seed", "0", "--out", str(model), "--quiet"]
    assert main(command) == 0
    assert main(command) == 2 and "exists" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0
    (model / "notes.txt").write_text("mine")
    assert main([*command, "--overwrite"]) == 2
    assert (model / "notes.txt").read_text() == "mine"


def test_model_folders_are_written_atomically(tmp_path, monkeypatch):
    """A save that fails half-way leaves the previous model whole and no temporary folder."""
    X = systems.get("fast_slow_linear").simulate(4, 20, seed=0).values.reshape(-1, 2)
    gan = CcGAN(n_epochs=1, batch_size=8).fit(X, X[:, 0], seed=0, progress=False)
    path = gan.save(tmp_path / "gan")
    config = (path / "config.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("eqfree.base.torch.save", broken)
    with pytest.raises(OSError, match="disk full"):
        gan.save(path)
    assert (path / "config.json").read_text() == config and (path / "state.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gan"]


# -- 2. --out equal to an input -----------------------------------------------------------------------------
def test_out_equal_to_the_input_is_refused_before_anything_is_deleted(tmp_path, capsys):
    path = tmp_path / "closure.zarr"
    assert closure(path) == 0
    before = open_zarr(path).drift.values
    assert main(["closure", "integrate", "--closure", str(path), "--z0", "0.5", "--t-end", "0.1", "--out", str(path),
                 "--overwrite", "--quiet"]) == 2
    assert "also an input" in capsys.readouterr().err
    np.testing.assert_array_equal(open_zarr(path).drift.values, before)


# -- 3. one writer per store -----------------------------------------------------------------------------------
HOLD = """
import sys, time
from eqfree.io import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_holders_pid(tmp_path, capsys):
    path = tmp_path / "closure.zarr"
    assert closure(path) == 0
    before = open_zarr(path).drift.values
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert closure(path, "--overwrite") == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid} on host" in err and "--overwrite" not in err
        with pytest.raises(OutputExistsError, match=str(holder.pid)):
            write_zarr(xr.Dataset(), path, overwrite=True)
    finally:
        holder.kill()
        holder.wait()
    np.testing.assert_array_equal(open_zarr(path).drift.values, before)


def test_the_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    """A lock file left by a process of this host that no longer runs (its marker: PID, then host)."""
    path = tmp_path / "out.zarr"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "out.zarr.lock").write_text(f"{dead.pid}\n{socket.gethostname()}\n")
    with pytest.warns(StaleLockWarning, match=f"process {dead.pid} on {socket.gethostname()}"), output_lock(path):
        assert (tmp_path / "out.zarr.lock").read_text().startswith(f"{os.getpid()}\n")
    assert not (tmp_path / "out.zarr.lock").exists()


# -- 4. output paths checked before any computation ----------------------------------------------------------
@pytest.fixture
def tripwire(monkeypatch):
    """Records every call that would start work: building a system, reading training data, loading a model."""
    calls = []

    def trip(name):
        def record(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} ran before the output was checked")
        return record

    monkeypatch.setattr(systems, "get", trip("systems.get"))
    monkeypatch.setattr(eqfree.cli.lifts, "training_pairs", trip("training_pairs"))
    monkeypatch.setattr(eqfree.cli.lifts, "trained_generator", trip("trained_generator"))
    monkeypatch.setattr(eqfree.cli.variational, "training_states", trip("training_states"))
    monkeypatch.setattr(eqfree.closures.Closure, "from_zarr", trip("Closure.from_zarr"))
    return calls


WRITERS = {
    "simulate": ["simulate", "--system", "caps", "--walkers", "4", "--steps", "10", "--seed", "3"],
    "umbrella": ["umbrella", "--system", "double_well", "--cv", "x1", "--grid", "-1:1:3", "--kappa", "10",
                 "--steps", "10", "--walkers", "2", "--seed", "0"],
    "closure estimate": ["closure", "estimate", "--system", "averaging_cubic", "--cv", "x1", "--grid", "-1:1:3",
                         "--burst", "0.001", "--walkers", "10", "--seed", "1"],
    "closure integrate": ["closure", "integrate", "--closure", "DATA", "--z0", "0", "--t-end", "1", "--seed", "1"],
    "project": ["project", "--system", "averaging_cubic", "--cv", "x1", "--z0", "1", "--t-end", "1",
                "--macro-step", "0.2", "--burst", "1e-4", "--walkers", "10", "--seed", "1"],
    "train-lift": ["train-lift", "--data", "DATA", "--cv", "x1", "--method", "score", "--seed", "1"],
    "train-cg": ["train-cg", "--data", "DATA", "--seed", "1"],
    "lift": ["lift", "--model", "DATA", "--at", "0.1", "--samples", "10", "--seed", "1"],
    "explore": ["explore", "--system", "caps", "--data", "DATA", "--cv", "x1", "--to", "2", "--step", "1",
                "--kappa", "10", "--steps", "10", "--seed", "1"],
}


@pytest.mark.parametrize("command", WRITERS)
def test_a_bad_out_is_refused_before_any_computation(store, tmp_path, capsys, tripwire, command):
    file = tmp_path / "a-file"
    file.write_text("")
    argv = [str(store) if a == "DATA" else a for a in WRITERS[command]]
    assert main([*argv, "--out", str(file / "out.zarr"), "--quiet"]) == 2
    assert "not a folder you can write to" in capsys.readouterr().err
    # an occupied --out, without --overwrite
    assert main([*argv, "--out", str(tmp_path / "a-file"), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert tripwire == []
    if command in ("explore",):
        assert main([*argv, "--out", str(tmp_path / "new.zarr"), "--save-model", str(file / "m"), "--quiet"]) == 2
        assert tripwire == [] and not (tmp_path / "new.zarr").exists()


# -- 5. resume verifies what it reads, compares what changes results ---------------------------------------
def test_a_done_point_with_a_deleted_chunk_is_recomputed_on_resume(tmp_path, capsys):
    cubic = systems.get("averaging_cubic")
    estimator = ConditionalAverageEstimator(cubic.exact_lift(cubic.dt), lambda x: -x[:, 1] ** 3, n_samples=200)
    path = tmp_path / "closure.zarr"
    whole = estimate_closure(estimator, np.linspace(-1, 1, 5), seed=7, store=path)
    for name in ("drift", "drift_stderr"):
        (path / name / "c" / "2" / "0").unlink()  # point 2's chunk (dims x1, component)
    assert np.isnan(open_zarr(path).drift.values[2]) and open_zarr(path).done.values[2]
    with pytest.warns(ResumeWarning, match=r"1 grid point\(s\) marked done have missing .*cv = \[0.0\]"):
        resumed = estimate_closure(estimator, np.linspace(-1, 1, 5), seed=7, store=path)
    xr.testing.assert_identical(resumed.drop_attrs(), whole.drop_attrs())  # same seed, same numbers
    xr.testing.assert_identical(open_zarr(path).load().drop_attrs(), whole.drop_attrs())


def test_resume_ignores_options_that_change_no_number_and_shows_the_whole_difference(tmp_path, capsys):
    path = tmp_path / "closure.zarr"
    assert closure(path) == 0
    # --quiet dropped, a scheduler-free rerun and the same options from a recipe: all resume
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('command = "closure estimate"\nsystem = "averaging_cubic"\ncv = "x1"\nestimator = "conditional"\n'
                      f'grid = "-1:1:5"\nwalkers = 50\nseed = 1\nout = "{path}"\n')
    assert main(["run", str(recipe)]) == 0
    assert "5/5 grid points done" in capsys.readouterr().out
    # a change of the walkers and the grid: refused, every difference in full
    assert main(["closure", "estimate", "--system", "averaging_cubic", "--cv", "x1", "--estimator", "conditional",
                 "--grid", "-1:1:41", "--walkers", "60", "--seed", "1", "--out", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "metadata.walkers: 50 → 60" in err and "..." not in err
    assert f"grid: {json.dumps(np.linspace(-1, 1, 5).tolist())} → {json.dumps(np.linspace(-1, 1, 41).tolist())}" in err


# -- 6. a request too large for memory ------------------------------------------------------------------------
def test_a_request_too_large_for_memory_is_refused_naming_the_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(systems.System, "simulate", lambda *a, **k: pytest.fail("simulated"))
    path = tmp_path / "big.zarr"
    assert main(["simulate", "--system", "caps", "--walkers", "100000", "--steps", "10000000", "--seed", "1",
                 "--out", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory" in err and "--save-every" in err and "--walkers" in err
    assert not path.exists() and not list(tmp_path.iterdir())


# -- 7. no traceback for a user's mistake ---------------------------------------------------------------------
def test_user_errors_print_one_line_and_no_traceback(store, tmp_path, capsys, monkeypatch):
    closure_store = tmp_path / "closure.zarr"
    assert closure(closure_store) == 0
    capsys.readouterr()
    cases = [
        ["stats", str(closure_store), "--coord", "x1"],  # KeyError before
        ["stats", str(tmp_path / "a-folder-of-nothing"), "--coord", "x1"],
        ["stats", str(tmp_path), "--coord", "x1"],  # a folder that is not a store
        ["simulate", "--system", "caps", "--walkers", "2", "--steps", "2", "--seed", "0", "--device", "nonsense",
         "--out", str(tmp_path / "d.zarr")],
    ]
    for argv in cases:
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's usage error
            status = exit_.code
        err = capsys.readouterr().err
        assert status == 2 and "Traceback" not in err and err.count("error:") == 1, (argv, err)
    # --debug shows the traceback
    with pytest.raises(Exception, match="holds no simulated states"):
        main(["stats", str(closure_store), "--coord", "x1", "--debug"])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--system", "caps", "--walkers", "2", "--steps", "2", "--seed", "0", "--device", "cuda",
              "--out", str(tmp_path / "d.zarr")])
    assert exit_.value.code == 2 and "CUDA is not available here; use --device cpu" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(eqfree.cli.closure, "estimator_of", interrupted)
    path = tmp_path / "closure.zarr"
    assert closure(path) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command again" in err and "Traceback" not in err
    assert not (tmp_path / "closure.zarr.lock").exists()  # the lock is released


def test_a_broken_pipe_and_a_real_ctrl_c_end_quietly(tmp_path):
    """In a real process: `eqfree systems | true`, and SIGINT during a simulation."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # the reader is gone before eqfree writes (it takes a second to start): the write meets a closed pipe
    piped = subprocess.run(f"{' '.join(EQFREE)} systems | true; echo $" + "{PIPESTATUS[0]}", shell=True,
                           executable="/bin/bash", capture_output=True, text=True, env=env)
    assert piped.stdout == "0\n" and piped.stderr == ""
    # Ctrl-C reaches the command as at a terminal, however pytest was started: a shell's background job (`&`)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    run = subprocess.Popen([*EQFREE, "simulate", "--system", "fast_slow_linear", "--walkers", "10", "--steps",
                            "100000000", "--save-every", "100000", "--seed", "1", "--out", str(tmp_path / "x.zarr")],
                           stderr=subprocess.PIPE, text=True, env=env,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lock = tmp_path / "x.zarr.lock"  # taken once the output is checked, just before the computation
        deadline = time.monotonic() + 120
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:  # a run that did not stop (10⁸ steps) must not outlive the test
        run.kill()
    assert run.returncode == 130 and "Traceback" not in err and "eqfree: interrupted" in err, err
    assert not lock.exists()


# -- 8. CLI manners -------------------------------------------------------------------------------------------
def test_version_and_negative_numbers_without_equals(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"eqfree {__version__}"
    args = parser().parse_args(joined(
        ["umbrella", "--system", "double_well", "--cv", "x1", "--grid", "-3.5:3.5:25", "--kappa", "20", "--steps", "1",
         "--walkers", "1", "--seed", "1", "--out", "o.zarr"]))
    np.testing.assert_array_equal(args.grid, np.linspace(-3.5, 3.5, 25))


def test_points_must_include_both_ends(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["closure", "integrate", "--closure", "c.zarr", "--z0", "1", "--t-end", "1", "--points", "1",
              "--out", str(tmp_path / "p.zarr")])
    assert "at least 2" in capsys.readouterr().err


COMMANDS = [["systems"], ["simulate"], ["stats"], ["umbrella"], ["closure", "estimate"], ["closure", "integrate"],
            ["project"], ["train-lift"], ["lift"], ["explore"], ["train-cg"], ["run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_every_command_ends_with_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert "\nexample:\n  eqfree " + command[0] in text
    lines = text.split("\nexample:\n")[0].splitlines()
    # an option line ("  --flag ...") carries its help on the same line or the next, indented deeper
    for i, line in enumerate(lines):
        if line.startswith("  -") and "  " not in line.strip():
            assert i + 1 < len(lines) and lines[i + 1].startswith(" " * 10), f"{line.strip()} has no help"


def test_stores_have_consolidated_metadata(store):
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")
        assert xr.open_zarr(store)["x"].shape == (11, 4, 3)


def test_progress_bars_follow_the_terminal(monkeypatch):
    """Progress bars show when standard error is a terminal, and never with --quiet."""
    from eqfree.cli.build import progress

    class Args:
        quiet = False

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress(Args)
    Args.quiet = True
    assert not progress(Args)
    Args.quiet = False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress(Args)
