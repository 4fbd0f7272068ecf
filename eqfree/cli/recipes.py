"""``eqfree run RECIPE.toml``: a command whose options a TOML file gives.

A recipe sets ``command`` (``"umbrella"``, ``"closure estimate"``, ...) and one key per option,
``_`` for ``-`` (``t_end = 0.4`` is ``--t-end=0.4``); ``true`` is a flag, a list repeats the option.
Options after the recipe's name replace the recipe's own (all its values of an option given once per CV, such
as ``--grid``): ``eqfree run demo.toml --out=/tmp/closure.zarr``. The recipe's text is kept in the provenance of
what the command writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tomllib

from ..errors import InputError, MissingInputError


def add_parsers(commands, parent) -> None:
    """``run``."""
    run = commands.add_parser("run", parents=[parent], help="run a command whose options are given in a TOML recipe",
                              example="eqfree run tutorials/closure_demo.toml --out=build/closure.zarr")
    run.add_argument("recipe_file", metavar="RECIPE.toml")
    run.add_argument("options", nargs=argparse.REMAINDER, metavar="OPTION",
                     help="options of the command that override the recipe's (e.g. --out=PATH)")
    run.set_defaults(run=cmd_run)


def recipe_arguments(path: str) -> tuple[list[str], str]:
    """The command line a recipe stands for, and the recipe's text."""
    if not Path(path).is_file():
        raise MissingInputError(f"no recipe at {path}")
    text = Path(path).read_text()
    try:
        recipe = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path} is not valid TOML: {error}") from None
    command = recipe.pop("command", None)
    if not isinstance(command, str):
        raise InputError(f"{path} must set command = \"umbrella\", \"closure estimate\", ... ")
    argv = command.split()
    for key, value in recipe.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [f"{flag}={item}" for item in value]
        elif value is not False:
            argv.append(f"{flag}={value}")  # "=": values may start with "-"
    return argv, text


def cmd_run(args) -> int:
    """Run the command of a TOML recipe, with the options given after it overriding the recipe's."""
    from .main import main  # main builds the parser that holds this command

    argv, text = recipe_arguments(args.recipe_file)
    overridden = {option.partition("=")[0] for option in args.options if option.startswith("--")}
    argv = [arg for arg in argv if arg.partition("=")[0] not in overridden]
    return main([*argv, *args.options, *(["--debug"] if args.debug else [])], recipe=text)
