"""The README's and the documentation pages' code blocks run as written, in order, in a fresh folder.

Each ``python`` block runs in a fresh namespace (a block may use only what it imports and the files that
earlier blocks of its page wrote); each ``bash`` block is a list of ``eqfree`` commands, run in-process one
by one, each exiting 0. Blocks shown but not run are ``text`` or a ``{code-block}`` directive. Every
runnable block states its cost in its first line; the long ones run with the smaller counts of :data:`FAST`
(each replaced text must be in its block, so a change of a page shows here).
"""

import re
import shlex
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from eqfree.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md"] + sorted(p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in
                                      ("api", "tutorials"))


def blocks(page: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block of a page (``{code-block}`` directives have their own info)."""
    tokens = MarkdownIt().parse(page.read_text())
    return [(token.info.strip(), token.content) for token in tokens if token.type == "fence"]


def runnable(page: Path) -> list[tuple[str, str]]:
    return [(language, code) for language, code in blocks(page) if language in ("python", "bash")]


#: per runnable block (its first line, the cost comment), the long counts and their fast replacements
FAST = {
    "# about 3 minutes: 25 windows": [
        ("n_steps=8000, n_walkers=400, save_every=100", "n_steps=400, n_walkers=20, save_every=20"),
        ("np.linspace(-3.5, 3.5, 25)", "np.linspace(-3.5, 3.5, 9)"), ('bins=150', 'bins=30'),
        ("np.linspace(-1.5, 1.5, 41)", "np.linspace(-1.5, 1.5, 5)"), ("n_walkers=4000", "n_walkers=200")],
    "# about 2 minutes: 3000 CcGAN": [
        ("simulate(50, 20_000", "simulate(10, 4000"), ("n_epochs=3000", "n_epochs=20"),
        ("n_epochs=4000", "n_epochs=20"), ("10_000, seed=1", "500, seed=1")],
    "# about a minute: biased runs": [
        ("simulate(50, 20_000", "simulate(10, 4000"), ("n_steps=1000, n_walkers=10", "n_steps=20, n_walkers=4"),
        ("1000, seed=4", "50, seed=4"), ("to=20.0", "to=8.0"),
        ("n_steps=1000, n_epochs=500", "n_steps=20, n_epochs=5")],
    "# about 35 minutes": [
        ("simulate(10, 100_000, seed=1, save_every=500", "simulate(2, 200, seed=1, save_every=10"),
        ("n_steps=20_000, n_walkers=4", "n_steps=500, n_walkers=2"), ("n_epochs=5000", "n_epochs=2")],
    "# about 2 minutes: 10000 reverse-KL": [
        ("n_epochs=10_000", "n_epochs=20"), ("10**6", "10**3"), ("simulate(100, 20_000", "simulate(20, 2000"),
        ("n_epochs=5000, kl_warmup=1000", "n_epochs=20, kl_warmup=5"),
        ("n_theta=50, n_x=10_000", "n_theta=3, n_x=100")],
    "# about 20 s: 200 walkers": [
        ("--walkers 200 --steps 2000", "--walkers 50 --steps 400"), ("--discard 50", "--discard 5")],
    "# about 30 minutes": [
        ("--walkers 400 --save-every 100", "--walkers 20 --save-every 20"), ("--steps 8000", "--steps 400"),
        ("-3.5:3.5:25", "-3.5:3.5:9"), ("--bins 150", "--bins 30"),
        ("-1.5:1.5:41", "-1.5:1.5:5"), ("--burst 0.002 --walkers 4000", "--burst 0.002 --walkers 200"),
        ("--compare 1000", "--compare 50"), ("--walkers 1000 --realizations 10", "--walkers 50 --realizations 2"),
        ("--epochs 5000", "--epochs 20"), ("--epochs-at-target 0", "--epochs-at-target 0 --epochs 20 --samples 100"),
        ("--samples 10000", "--samples 100"), ("--walkers 50 --steps 20000", "--walkers 10 --steps 4000"),
        ("--epochs 4000", "--epochs 20"), ("--samples 1000 --method", "--samples 50 --method"),
        ("--steps 1000 --walkers 10", "--steps 20 --walkers 4"), ("--to 20", "--to 8"),
        ("--steps 1000 --model", "--steps 20 --epochs 5 --model"),
        ("--walkers 4 --steps 100000 --save-every 500", "--walkers 2 --steps 200 --save-every 10"),
        ("--kappa 50 --steps 20000", "--kappa 50 --steps 300"),
        ("--out=build/demo.zarr", "--out=build/demo.zarr --grid=-1:1:3 --walkers=100")],
}



def fast(code: str) -> str:
    """The block with its long counts replaced (each must be there)."""
    for key, replacements in FAST.items():
        if code.startswith(key):
            for original, small in replacements:
                assert original in code, f"block {key!r} no longer holds {original!r}: update FAST"
                code = code.replace(original, small)
    return code


def commands(code: str) -> list[list[str]]:
    """The command lines of a bash block (continuations joined, comments dropped)."""
    lines = code.replace("\\\n", " ").splitlines()
    return [words for words in (shlex.split(line, comments=True) for line in lines) if words]


def test_blocks_are_known_languages_and_state_their_cost():
    everything = [code for page in PAGES for _, code in runnable(page)]
    for page in PAGES:
        for language, code in blocks(page):
            assert language in ("python", "bash", "text") or language.startswith("{"), f"{page.name}: {language!r}"
            if language in ("python", "bash"):
                assert re.match(r"# about ", code), f"{page.name}: a block does not state its cost: {code[:60]!r}"
    for key in FAST:
        assert sum(code.startswith(key) for code in everything) == 1, f"FAST's {key!r} names no single block"
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "DESIGN.md" not in readme


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs_as_written_in_a_fresh_folder(page, tmp_path, monkeypatch):
    pytest.importorskip("openmm")
    (tmp_path / "tutorials").symlink_to(ROOT / "tutorials")
    monkeypatch.chdir(tmp_path)
    for index, (language, code) in enumerate(runnable(page)):
        code = fast(code)
        if language == "python":
            exec(compile(code, f"{page.name} block {index}", "exec"), {"__name__": "__main__"})
        else:
            for words in commands(code):
                assert words[0] == "eqfree", f"{page.name} block {index}: only eqfree commands run here, not {words[0]}"
                assert main(words[1:]) == 0, f"{page.name} block {index}: {' '.join(words)}"
