"""The ``eqfree`` parser and entry point: parse, run the command, print a user's mistake in one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings

from ..errors import EqfreeError
from ..version import __version__
from . import check, closure, continuation, lifts, options, project, recipes, reweight, simulate, umbrella, variational

GROUPS = (simulate, umbrella, reweight, closure, project, continuation, lifts, variational, recipes, check)

#: a value that starts like a negative number (``-3.5:3.5:25``): never an option's name
NEGATIVE = re.compile(r"^-\.?\d")


def parser() -> argparse.ArgumentParser:
    """The parser of every command; each command group adds its own subcommands."""
    top = argparse.ArgumentParser(prog="eqfree", description="Equation-free multiscale toolkit",
                                  formatter_class=options.HelpFormatter,
                                  epilog="example:\n  eqfree systems\n\n`eqfree COMMAND --help` shows a command's "
                                         "options, each with its unit and default, and an example.")
    top.add_argument("--version", action="version", version=f"eqfree {__version__}")
    top.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = top.add_subparsers(dest="command", required=True, parser_class=options.Parser)
    parent = options.common()
    for group in GROUPS:
        group.add_parsers(commands, parent)
    return top


def joined(argv: list[str]) -> list[str]:
    """``--grid -3.5:3.5:25`` as ``--grid=-3.5:3.5:25``: argparse takes a value starting with ``-`` for an option."""
    out: list[str] = []
    for token in argv:
        if out and NEGATIVE.match(token) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None, *, recipe: str | None = None) -> int:
    """Run ``eqfree`` on ``argv``; returns the exit status: 2 for a mistake (an :class:`~eqfree.errors.EqfreeError`,
    printed in one line, its traceback with ``--debug``), 130 for an interruption (Ctrl-C), 0 quietly when the
    reader of the output goes away (``| head``). Other errors are bugs and show their traceback."""
    program = argv is None
    argv = joined(sys.argv[1:] if argv is None else list(argv))
    args = parser().parse_args(argv)
    args.argv, args.recipe = argv, recipe
    with contextlib.ExitStack() as held, warnings.catch_warnings():
        if program:  # a warning in one line, as errors are
            warnings.showwarning = lambda message, category, *_, **__: print(
                f"eqfree: warning: {' '.join(str(message).split())}", file=sys.stderr)
        args.held = held  # the locks of the command's outputs (build.check_output), released at its end
        try:
            status = args.run(args)
            if program:
                sys.stdout.flush()  # a closed pipe shows here, not at exit
            return status
        except EqfreeError as error:
            if args.debug:
                raise
            print(f"eqfree: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"eqfree: interrupted; {resume_hint(args)}", file=sys.stderr)
            return 130
        except BrokenPipeError:
            if args.debug:
                raise
            with contextlib.suppress(OSError, ValueError):  # no more output: point stdout at /dev/null
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0


def resume_hint(args) -> str:
    """What to do after Ctrl-C: a closure store resumes, other commands write their output at the end."""
    if args.command == "closure" and args.closure_command == "estimate":
        return (f"the grid points finished are kept in {args.out}: run the same command again to compute the rest "
                "(without --overwrite)")
    return "nothing was written; run the command again to start over"
