"""Sphinx configuration of the eqfree documentation (``make docs``: HTML in build/docs/html).

Built offline with warnings as errors: no intersphinx, no remote assets. The tutorials are executed by
sphinx-gallery in their fast mode (``EQFREE_FAST=1``); ``EQFREE_DOCS_FULL=1 make docs`` runs them in full.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

from eqfree_docs import SavedFigures, escape_bars, write_api_pages  # noqa: E402

import eqfree  # noqa: E402

FIGURES = ROOT / "build" / "docs" / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
os.environ["EQFREE_OUT"] = str(FIGURES)
if os.environ.get("EQFREE_DOCS_FULL") != "1":
    os.environ["EQFREE_FAST"] = "1"

project = "eqfree"
author = "the eqfree developers"
copyright = "2026, the eqfree developers"
release = eqfree.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext", "tutorials/*.ipynb", "tutorials/*.py", "tutorials/*.json",
                    "tutorials/*.zip", "tutorials/*.md5"]
default_role = "literal"
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks: set = set()

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "tutorials"),
    "gallery_dirs": "tutorials",
    "filename_pattern": r"/\d\d_",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": (SavedFigures(FIGURES),),
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": True,
    "abort_on_example_error": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"eqfree {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_context = {"default_mode": "auto"}
html_static_path = ["_static"]
html_favicon = "_static/eqfree.svg"
html_logo = "_static/eqfree.svg"
html_show_sourcelink = False


def setup(app):
    app.connect("config-inited", lambda app, config: write_api_pages(app))
    app.connect("autodoc-process-docstring", escape_bars)
