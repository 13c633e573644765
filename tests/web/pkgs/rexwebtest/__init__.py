"""A package for rex.web's tests: commands and a location."""

import errno

from webob import Response
from webob.exc import HTTPConflict

from rex.core import (InsufficientStorageError, IntVal, NotFoundError, StrVal, TooLargeError,
                      UnavailableError)
from rex.web import Command, Location, Parameter, Upload, redirect, render_template

REQUIRES = ("rex.web",)


class HelloCmd(Command):
    path = "/hello"
    parameters = [Parameter("name", StrVal(r"\w+")), Parameter("times", IntVal(1, 3), default=1)]

    def render(self, req, name, times):
        return Response(render_template("rexwebtest:hello.html", name=name, times=times))


class EchoFileCmd(Command):
    path = "/echo"
    methods = ("POST",)
    parameters = [Parameter("file", lambda value: value), Parameter("note", StrVal())]

    def render(self, req, file, note):
        assert isinstance(file, Upload)
        return Response(f"{note}:{file.filename}:{file.size}:".encode() + file.read())


class OpenCmd(Command):
    path = "/open"
    access = "anybody"

    def render(self, req):
        return Response("open")


class TreeLocation(Location):
    path = "/tree"

    def render(self, req, path):
        return Response(f"tree:{path}")


class NotesCmd(Command):
    """Echoes a form's fields, urlencoded or multipart."""

    path = "/notes"
    methods = ("POST",)
    parameters = [Parameter("a", StrVal(), default=""), Parameter("b", StrVal(), default="")]

    def render(self, req, a, b):
        return Response(f"a={a!r} b={b!r}")


class FailCmd(Command):
    """Raises what `kind` names: typed errors, an HTTP exception, a bug."""

    path = "/fail"
    parameters = [Parameter("kind", StrVal(r"\w+"))]

    def render(self, req, kind):
        if kind == "notfound":
            raise NotFoundError("No such note:", "n1")
        if kind == "toolarge":
            raise TooLargeError("Expected at most 3 notes")
        if kind == "conflict":
            raise HTTPConflict("The note exists already.")
        if kind == "unavailable":
            try:
                raise ConnectionRefusedError(errno.ECONNREFUSED, "the notes server refused")
            except OSError as exc:
                raise UnavailableError("Cannot reach the notes server") from exc
        if kind == "full":
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as exc:
                raise InsufficientStorageError("No space left to store the note") from exc
        raise RuntimeError("a bug that knows the password hunter2")


class BackCmd(Command):
    path = "/back"

    def render(self, req):
        return redirect("./hello?name=again")
