"""The ``rex`` command: one `click` group whose subcommands come from the
installed packages (the entry point group ``rex.commands``), and what they
share: building an application from a package and its settings.

Settings resolve as `rex serve` has always done it: each package's defaults,
then the YAML file of ``--settings``, then ``name=value`` arguments, which
may stand anywhere among the options.  A user's mistake is one short
paragraph on standard error and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from importlib.metadata import entry_points, version
from typing import Any

import click
import yaml

from .application import Rex
from .error import Error

COMMANDS = "rex.commands"  # the entry point group of subcommands


class Failure(click.ClickException):
    """A user's mistake or a refused setting: its message, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"rex: {self.format_message()}", err=True)


class RexGroup(click.Group):
    """Subcommands found through entry points, loaded only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({point.name for point in entry_points(group=COMMANDS)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        for point in entry_points(group=COMMANDS, name=name):
            return point.load()  # type: ignore[no-any-return]
        return None


@click.group(cls=RexGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 100})
@click.version_option(version("rex.attach"), "--version", prog_name="rex")
def main() -> None:
    """Run and operate RexDB applications."""


def application_command(function: Callable[..., Any]) -> Callable[..., Any]:
    """Adds what every command on an application takes (PACKAGE, name=value
    settings, ``--settings FILE``) and gives the function the built `Rex`
    as its first argument, `app`."""

    @click.argument("package")
    @click.argument("assignments", nargs=-1, metavar="[NAME=VALUE]...")
    @click.option("--settings", "settings_file", metavar="FILE",
                  type=click.Path(dir_okay=False),
                  help="A YAML file of settings; NAME=VALUE arguments win over it.")
    @functools.wraps(function)
    def command(package: str, assignments: tuple[str, ...], settings_file: str | None,
                **options: Any) -> Any:
        return function(build_app(package, assignments, settings_file), **options)

    return command


COMMAND_LINE = "the command line"  # where ``name=value`` arguments come from, in messages


def parse_settings(assignments: tuple[str, ...],
                   settings_file: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The settings of the YAML file, then of ``name=value`` arguments, each
    with where it comes from (the file's path, `COMMAND_LINE`)."""
    sources: list[tuple[str, dict[str, Any]]] = []
    if settings_file is not None:
        try:
            with open(settings_file, encoding="utf-8") as stream:
                loaded = yaml.safe_load(stream)
        except OSError as exc:
            raise Failure(f"Cannot read the settings file {settings_file}: "
                          f"{exc.strerror}.") from None
        except yaml.YAMLError as exc:
            raise Failure(f"The settings file {settings_file} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}.") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise Failure(f"The settings file {settings_file} must hold a mapping of "
                          f"setting names to values, not a {type(loaded).__name__}.")
        sources.append((os.path.abspath(settings_file), loaded or {}))
    arguments: dict[str, Any] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Failure(f"Expected a setting as NAME=VALUE, got {item!r}.")
        arguments[name] = value
    sources.append((COMMAND_LINE, arguments))
    return sources


def build_app(package: str, assignments: tuple[str, ...], settings_file: str | None) -> Rex:
    """The application, or `Failure` with the reason it was refused."""
    try:
        return Rex.from_sources([package], parse_settings(assignments, settings_file))
    except Error as error:
        raise Failure(str(error)) from None
