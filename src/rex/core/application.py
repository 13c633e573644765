"""The application: packages, settings, initialization and the active app."""

from __future__ import annotations

import contextvars
import difflib
import functools
import importlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar

import yaml

from .error import Error, mask_passwords
from .extension import Extension
from .validate import AnyVal, Validate

F = TypeVar("F", bound=Callable[..., Any])
MANDATORY = object()


class Package:
    """A Python package that is part of an application.

    Its module may list the packages it depends on in ``REQUIRES``; it may
    keep default settings in ``settings.yaml`` and Jinja2 templates in
    ``templates/`` beside its ``__init__.py``.
    """

    def __init__(self, module: ModuleType, prefix: str) -> None:
        self.name: str = module.__name__
        self.module = module
        self.requires: tuple[str, ...] = tuple(getattr(module, "REQUIRES", ()))
        self.path = os.path.dirname(os.path.abspath(module.__file__ or ""))
        self.prefix = prefix  # URL prefix: "" for the main package, else "/attach" etc.

    def file(self, name: str) -> str | None:
        path = os.path.join(self.path, name)
        return path if os.path.exists(path) else None

    def __repr__(self) -> str:
        return f"Package({self.name!r})"


class PackageCollection(tuple):
    """The application's packages, dependencies first, main package last."""

    @classmethod
    def load(cls, names: Iterable[str]) -> PackageCollection:
        names = list(names)
        ordered: list[Package] = []
        seen: set[str] = set()

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in chain:
                raise Error("Found a dependency cycle:", " -> ".join(chain + (name,)))
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise Error("Cannot import package:", name).wrap("Reason:", str(exc)) from None
            requires = ("rex.core",) if name != "rex.core" else ()
            for dependency in requires + tuple(getattr(module, "REQUIRES", ())):
                visit(dependency, chain + (name,))
            seen.add(name)
            main = names and name == names[0]
            ordered.append(Package(module, "" if main else "/" + name.rsplit(".", 1)[-1]))

        for name in names:
            visit(name, ())
        return cls(ordered)

    def owner(self, module_name: str) -> Package | None:
        """The package a module belongs to."""
        best = None
        for package in self:
            if module_name == package.name or module_name.startswith(package.name + "."):
                if best is None or len(package.name) > len(best.name):
                    best = package
        return best

    def get(self, name: str) -> Package | None:
        return next((package for package in self if package.name == name), None)


class Setting(Extension):
    """A configuration parameter that a package declares.

    Subclasses set `name`, `validate` and, unless the setting is mandatory,
    `default`; the docstring says what the setting is for.  A setting whose
    value is a secret (a password, a key) sets `secret`: no message, error
    or ``repr`` then shows its value, not even a rejected one.
    """

    name: str
    validate: Validate = AnyVal()
    default: Any = MANDATORY
    secret: bool = False

    @classmethod
    def merge(cls, old: Any, new: Any) -> Any:
        """Combines a value with the one given before it: the new one wins."""
        return new


class Initialize(Extension):
    """A check that runs when an application is built; raise `Error` to refuse."""

    def __call__(self) -> None:
        raise NotImplementedError


class WSGIHandler(Extension):
    """Answers the application's HTTP requests; `rex.web` provides one."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]


_active: contextvars.ContextVar[tuple[Rex, ...]] = contextvars.ContextVar("rex", default=())


HIDDEN = "'***'"  # what messages show in place of a secret


def _is_secret(name: str) -> bool:
    """Is the setting of this name a secret?  Those declared so, and, for a
    setting of a package that failed to load, any name that says it is."""
    declared = any(issubclass(ext, Setting) and ext.secret and getattr(ext, "name", None) == name
                   for ext in Extension._registry)
    return declared or "secret" in name or "password" in name


def _masked(name: str, value: Any) -> str:
    """The `repr` of a setting's value, for messages: a secret is hidden and
    so is the password of a URL (``db=postgresql://user:PASSWORD@...``)."""
    if _is_secret(name) and value is not None:
        return HIDDEN
    return mask_passwords(repr(value))


def _hide_rejected_value(error: Error) -> Error:
    """Hides what an error says it got: the error of a secret setting's
    validation must not show the secret, however wrong the value is."""
    error.paragraphs = [(message, HIDDEN if message == "Got:" and payload is not None
                         else payload) for message, payload in error.paragraphs]
    return error


class Rex:
    """An application made of packages and validated settings.

    ``Rex('rex.attach_demo', attach_dir='...')`` loads the package and those it
    requires, validates the settings and runs every `Initialize` check.
    ``with app:`` makes it the active application of the current thread or
    async task (`get_rex()`); the application is also a WSGI application.
    """

    def __init__(self, *packages: str, **settings: Any) -> None:
        self._build(packages, settings, {})

    @classmethod
    def from_sources(cls, packages: Iterable[str],
                     sources: Iterable[tuple[str, Mapping[str, Any]]]) -> Rex:
        """The application of `packages` with settings from named sources,
        each winning over those before it: ``[("/etc/app.yaml", {...}),
        ("the command line", {...})]``.  An error about a setting names the
        source it came from (``Rex(...)`` says "parameters")."""
        settings: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for origin, values in sources:
            settings.update(values)
            origins.update(dict.fromkeys(values, origin))
        app = cls.__new__(cls)
        app._build(tuple(packages), settings, origins)
        return app

    def _build(self, packages: tuple[str, ...], settings: dict[str, Any],
               origins: dict[str, str]) -> None:
        self.requirements = packages
        self.parameters = settings
        self.cache: dict[Any, Any] = {}
        self._lock = threading.RLock()
        try:
            self.packages = PackageCollection.load(packages)
            with self:
                self.settings = self._load_settings(settings, origins)
                self.handler = WSGIHandler.top()()
                for initialize in Initialize.all():
                    initialize()()
        except Error as error:
            error.wrap("While initializing RexDB application:", "\n".join(packages))
            if settings:
                error.wrap("With parameters:", "\n".join(
                    f"{name}: {_masked(name, settings[name])}" for name in sorted(settings)))
            raise

    def _load_settings(self, parameters: dict[str, Any],
                       origins: dict[str, str]) -> SimpleNamespace:
        declared = {setting.name: setting for setting in Setting.all()}
        values: dict[str, Any] = {}

        def add(name: str, value: Any, source: str) -> None:
            if name not in declared:
                error = Error("Got unknown setting:", name).wrap("Declared in:", source)
                similar = difflib.get_close_matches(name, declared, n=3, cutoff=0.75)
                if similar:
                    error.wrap("Did you mean:", ", ".join(similar))
                raise error
            setting = declared[name]
            try:
                value = setting.validate(value)
            except Error as error:
                if setting.secret:
                    _hide_rejected_value(error)
                raise error.wrap("While validating setting:", name).wrap("Declared in:", source)
            values[name] = setting.merge(values[name], value) if name in values else value

        for name, setting in declared.items():
            if setting.default is not MANDATORY:
                add(name, setting.default, "default of " + setting.__module__)
        for package in self.packages:
            path = package.file("settings.yaml")
            if path:
                with open(path, encoding="utf-8") as stream:
                    for name, value in (yaml.safe_load(stream) or {}).items():
                        add(name, value, path)
        for name, value in parameters.items():
            add(name, value, origins.get(name, "parameters"))
        missing = sorted(set(declared) - set(values))
        if missing:
            raise Error("Missing mandatory setting:", missing[0])
        return SimpleNamespace(**values)

    def __enter__(self) -> Rex:
        _active.set(_active.get() + (self,))
        return self

    def __exit__(self, *exc_info: object) -> None:
        stack = _active.get()
        assert stack and stack[-1] is self, "unbalanced `with app:`"
        _active.set(stack[:-1])

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        with self:
            try:
                return self.handler(environ, start_response)
            except Error as error:
                return error(environ, start_response)

    def __repr__(self) -> str:
        args = [repr(name) for name in self.requirements]
        args += [f"{name}={_masked(name, value)}" for name, value in self.parameters.items()]
        return f"Rex({', '.join(args)})"


def get_rex() -> Rex:
    """The active application (see ``with app:``)."""
    stack = _active.get()
    if not stack:
        raise RuntimeError("no active RexDB application; use `with app:`")
    return stack[-1]


def get_settings() -> SimpleNamespace:
    """The settings of the active application, as attributes."""
    return get_rex().settings


def cached(function: F) -> F:
    """Caches a function's result per application and arguments."""

    @functools.wraps(function)
    def wrapper(*args: Any) -> Any:
        app = get_rex()
        key = (wrapper, args)
        try:
            return app.cache[key]
        except KeyError:
            pass
        with app._lock:
            if key not in app.cache:
                app.cache[key] = function(*args)
            return app.cache[key]

    return wrapper  # type: ignore[return-value]
