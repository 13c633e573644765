"""A package for the proxy tests: it says what the application sees of a
request (who sent it, over what, for whom)."""

from webob import Response

from rex.web import Command
from rex.web.proxy import is_proxied

REQUIRES = ("rex.web",)


def seen(req):
    return Response(json={
        "remote_addr": req.remote_addr, "remote_user": req.remote_user, "scheme": req.scheme,
        "host": req.host, "proxied": is_proxied(req.environ),
        "forwarded": {name: value for name, value in req.headers.items()
                      if name.lower().startswith("x-")}})


class WhoAmICmd(Command):
    """Open to anybody."""

    path = "/whoami"
    access = "anybody"

    def render(self, req):
        return seen(req)


class PrivateCmd(Command):
    """Needs the permission that `access` gives this package; takes a POST
    without reading its body."""

    path = "/private"
    methods = ("GET", "HEAD", "POST")

    def render(self, req):
        return seen(req)
