"""What every ``rex attach`` command shares: the application built from
PACKAGE and its settings, the command's own operands, and exit statuses.

``rex attach COMMAND PACKAGE [NAME=VALUE ...] [OPERAND ...] [--settings FILE]``:
arguments shaped ``NAME=VALUE`` (a setting's name, ``=``, its value) are
settings, the others the command's operands (handles, files, a prefix),
which never take that shape (a file that does is named ``./NAME=VALUE``).
Settings resolve as for ``rex serve`` (`rex.core.cli.build_app`).

Exit statuses: 0 fine; 1 the command ran and found problems (a damaged or
missing attachment, a failed check, a store that failed); 2 a mistake in
the command line or the settings.  Either way a message, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from rex.core import Error
from rex.core.cli import Failure, build_app

SETTING = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


class Problem(Failure):
    """The command ran and found a problem: its message, exit status 1."""

    exit_code = 1


class Found(Exception):
    """Raised by a command that reported its problems itself: exit status 1."""


def store_command(name: str, operands: str = "", arity: tuple[int, int | None] = (0, 0),
                  ) -> Callable[[Callable[..., Any]], click.Command]:
    """A ``rex attach`` subcommand: PACKAGE, settings and `operands` (their
    metavar; between ``arity[0]`` and ``arity[1]`` of them, None: any
    number), ``--settings FILE``; the function gets the built application,
    active, the list of operands if it takes any, then its own options."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @click.argument("package")
        @click.argument("arguments", nargs=-1, metavar=f"[NAME=VALUE]... {operands}".rstrip())
        @click.option("--settings", "settings_file", metavar="FILE",
                      type=click.Path(dir_okay=False),
                      help="A YAML file of settings; NAME=VALUE arguments win over it.")
        @functools.wraps(function)
        def command(package: str, arguments: tuple[str, ...], settings_file: str | None,
                    **options: Any) -> None:
            settings = tuple(arg for arg in arguments if SETTING.match(arg))
            given = [arg for arg in arguments if not SETTING.match(arg)]
            least, most = arity
            if len(given) < least or (most is not None and len(given) > most):
                wanted = f"{operands or 'no operand'}"
                raise click.UsageError(f"Expected {wanted}, got: {' '.join(given) or 'none'}.")
            app = build_app(package, settings, settings_file)
            try:
                with app, errors():
                    function(app, given, **options) if operands else function(app, **options)
            except Found:
                raise click.exceptions.Exit(1) from None

        return click.command(name)(command)

    return decorate


def one_line(error: BaseException) -> str:
    """An error's message on one line, for a report of many."""
    return " ".join(str(error).split())


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Turns the errors of rex.attach into exit statuses: a plain `Error` is
    bad input (2); its subclasses say the store failed or lacks something (1)."""
    try:
        yield
    except Error as error:
        if type(error) is Error:
            raise Failure(str(error)) from None
        raise Problem(str(error)) from None
    except BrokenPipeError:
        # The reader of standard output went away (`rex attach ls ... | head`):
        # stop quietly, and keep Python from failing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise click.exceptions.Exit(1) from None
