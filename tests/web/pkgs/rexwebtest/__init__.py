"""A package for rex.web's tests: commands and a location."""

from webob import Response

from rex.core import IntVal, StrVal
from rex.web import Command, Location, Parameter, Upload, render_template

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
