"""The examples in docstrings (``>>>``) run and print what they show, in every module of the installed package."""

import doctest
import importlib
import pkgutil

import pytest

import eqfree

PACKAGES = [eqfree, importlib.import_module("eqfree.systems"), importlib.import_module("eqfree.closures")]
MODULES = sorted({package.__name__ for package in PACKAGES} | {
    info.name for package in PACKAGES for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if ".cli" not in info.name and not info.name.endswith("__main__")})
WITH_EXAMPLES = [name for name in MODULES
                 if any(test.examples for test in doctest.DocTestFinder().find(importlib.import_module(name)))]


def test_there_are_examples():
    assert len(WITH_EXAMPLES) >= 3


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
