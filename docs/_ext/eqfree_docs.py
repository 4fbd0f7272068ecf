"""Two pieces of the documentation build: API pages generated from each package's ``__all__`` (so a
name exported is a name documented), and a sphinx-gallery scraper for the figures a tutorial saves
to ``EQFREE_OUT`` (the tutorials write PNG files rather than show figures)."""

from __future__ import annotations

import importlib
import inspect
import shutil
from pathlib import Path

#: The packages of the API reference, in reading order, with one line on each.
PACKAGES = {
    "eqfree": "The top-level namespace: the operators and the estimators most work starts from.",
    "eqfree.systems": "Model systems with their analytic facts and exact lifts.",
    "eqfree.evolve": "Fine simulators: SDE integrators, biases, OpenMM.",
    "eqfree.restrict": "Collective variables: coordinates, dihedrals, diffusion maps, kernel extensions.",
    "eqfree.reweight": "WHAM and MBAR.",
    "eqfree.lift": "Lifts: umbrella sampling, generative models, variational coarse-graining.",
    "eqfree.coarse": "The coarse time-stepper's uses: derivatives, projective integration, fixed points.",
    "eqfree.closures": "Closures dz = B dt + √D dW across CV grids, their stores and closed paths.",
    "eqfree.testing": "Consistency checks for a user's own operators.",
    "eqfree.metrics": "Distances between laws.",
    "eqfree.io": "Stores and provenance.",
    "eqfree.errors": "The error family.",
}


def public_names(module) -> list[str]:
    """The names a module exports: ``__all__``, else its public classes and functions defined there."""
    if hasattr(module, "__all__"):
        return [name for name in module.__all__ if not inspect.ismodule(getattr(module, name))]
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
                  and value.__module__ == module.__name__)


def canonical_names() -> dict[int, str]:
    """Each exported object's documented name: the first package of :data:`PACKAGES` below the top
    level that exports it (``eqfree.UmbrellaSampling`` is documented once, as ``eqfree.lift.UmbrellaSampling``)."""
    names: dict[int, str] = {}
    for package in [*PACKAGES, "eqfree"][1:]:
        module = importlib.import_module(package)
        for name in public_names(module):
            names.setdefault(id(getattr(module, name)), f"{package}.{name}")
    return names


def write_api_pages(app) -> None:
    """docs/api/<package>.rst: an autosummary of every exported name, one page per object."""
    folder = Path(app.srcdir) / "api"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    canonical = canonical_names()
    index = ["API reference", "=============", "", ".. toctree::", "   :maxdepth: 1", ""]
    for package, summary in PACKAGES.items():
        module = importlib.import_module(package)
        index.append(f"   {package}")
        lines = [package, "=" * len(package), "", summary, "", ".. autosummary::", "   :toctree: generated",
                 "   :nosignatures:", ""]
        lines += [f"   {canonical[id(getattr(module, name))]}" for name in public_names(module)]
        (folder / f"{package}.rst").write_text("\n".join(lines) + "\n")
    (folder / "index.rst").write_text("\n".join(index) + "\n")


def escape_bars(app, what, name, obj, options, lines) -> None:
    """Docstrings write math in plain Unicode, where ``|x|`` is an absolute value, not an rst
    substitution: escape bars outside literals."""
    for i, line in enumerate(lines):
        parts = line.split("``")
        parts[::2] = [part.replace("|", "\\|") for part in parts[::2]]
        lines[i] = "``".join(parts)


class SavedFigures:
    """sphinx-gallery image scraper: the PNG files written to ``folder`` since the last block."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.seen: dict[Path, float] = {}

    def __repr__(self) -> str:  # a stable repr keeps Sphinx's environment cache valid
        return "SavedFigures()"

    def __call__(self, block, block_vars, gallery_conf):
        from sphinx_gallery.scrapers import figure_rst

        new = []
        for path in sorted(self.folder.rglob("*.png")):
            mtime = path.stat().st_mtime
            if self.seen.get(path) != mtime:
                self.seen[path] = mtime
                new.append(path)
        targets = []
        for path, target in zip(new, block_vars["image_path_iterator"]):
            shutil.copyfile(path, target)
            targets.append(target)
        return figure_rst(targets, gallery_conf["src_dir"])
