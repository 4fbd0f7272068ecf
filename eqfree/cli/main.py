"""The ``eqfree`` parser and entry point: parse, run the command, print a user's mistake in one line."""

from __future__ import annotations

import argparse
import sys

from ..errors import EqfreeError
from . import closure, lifts, options, project, recipes, simulate, umbrella, variational

GROUPS = (simulate, umbrella, closure, project, lifts, variational, recipes)


def parser() -> argparse.ArgumentParser:
    """The parser of every command; each command group adds its own subcommands."""
    top = argparse.ArgumentParser(prog="eqfree", description="Equation-free multiscale toolkit")
    top.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = top.add_subparsers(dest="command", required=True)
    parent = options.common()
    for group in GROUPS:
        group.add_parsers(commands, parent)
    return top


def main(argv: list[str] | None = None, *, recipe: str | None = None) -> int:
    """Run ``eqfree`` on ``argv``; returns the exit status (2 for an :class:`~eqfree.errors.EqfreeError`,
    whose message is printed in one line; other errors are bugs and show their traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv, args.recipe = argv, recipe
    try:
        return args.run(args)
    except EqfreeError as error:
        if args.debug:
            raise
        print(f"eqfree: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
