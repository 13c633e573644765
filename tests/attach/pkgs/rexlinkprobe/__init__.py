"""A package for the many-hosts test: it makes the direct links of
rex.attach, so that a link made by one host can be used on another."""

from webob import Response

from rex.attach import check_handle, get_storage
from rex.core import IntVal, MaybeVal, StrVal
from rex.web import Command, Parameter

REQUIRES = ("rex.attach",)


class LinkCmd(Command):
    """A download link of a handle, or with `size` an upload link."""

    path = "/link"
    access = "anybody"
    parameters = [Parameter("handle", StrVal()), Parameter("size", MaybeVal(IntVal(0)), None)]

    def render(self, req, handle, size):
        storage = get_storage()
        check_handle(handle)
        link = storage.download_link(handle) if size is None else storage.upload_link(handle, size)
        return Response(json={"url": link.url, "method": link.method, "headers": link.headers})
