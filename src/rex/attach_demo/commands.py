"""The demo's pages: the list with its upload form, upload and download."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re

from sqlalchemy import exc, insert, select
from webob import Request, Response
from webob.exc import HTTPNotFound

from rex.attach import Attachment, AttachmentVal, download, get_storage, upload
from rex.core import ExistsError, NotFoundError, StrVal
from rex.db import get_db
from rex.web import Command, Parameter, redirect, render_template

from .database import file_table

# A code is a word no longer than its column: PostgreSQL refuses a longer
# one, SQLite would store it; both must answer 400 alike.
CODE = StrVal(r"\w+", max_length=file_table.c.code.type.length)
TITLE_LENGTH = 1000  # characters
TITLE = StrVal(r"(?s).*\S.*", max_length=TITLE_LENGTH)

TEMPLATE = os.path.join(os.path.dirname(__file__), "templates", "index.html")


@functools.cache
def content_security_policy() -> str:
    """The page's Content-Security-Policy: its own origin only, no script at
    all (the page needs none), no framing, forms posted only to itself, and
    the inline ``<style>`` of the template allowed by its SHA-256 (computed
    from the template's source: the block holds no template syntax, so the
    page shows it unchanged)."""
    with open(TEMPLATE, encoding="utf-8") as stream:
        styles = re.findall(r"<style>(.*?)</style>", stream.read(), re.S)
    hashes = [base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
              for style in styles]
    style_src = " ".join(f"'sha256-{digest}'" for digest in hashes) or "'none'"
    return (f"default-src 'self'; script-src 'none'; style-src {style_src}; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def html_page(page: str) -> Response:
    """An HTML page with the headers that keep browsers from running anything
    the page did not bring itself, framing it or second-guessing its type."""
    response = Response(page, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class IndexCmd(Command):
    """The list of stored files and the upload form."""

    path = "/"

    def render(self, req: Request) -> Response:
        with get_db().connect() as connection:
            rows = connection.execute(select(file_table).order_by(file_table.c.code)).all()
        return html_page(render_template("rex.attach_demo:index.html", files=rows,
                                         code_length=CODE.max_length, title_length=TITLE_LENGTH))


class UploadCmd(Command):
    """Stores an uploaded file under a new code, then shows the list."""

    path = "/upload"
    methods = ("POST",)
    parameters = [
        Parameter("code", CODE),
        Parameter("title", TITLE),
        Parameter("attachment", AttachmentVal()),
    ]

    def render(self, req: Request, code: str, title: str, attachment: Attachment) -> Response:
        if self.exists(code):
            raise ExistsError("A file with this code already exists:", code)
        handle = upload(attachment)
        inserted = False  # the INSERT went through: only COMMIT is left
        try:
            with get_db().begin() as connection:
                connection.execute(insert(file_table).values(
                    code=code, title=title.strip(), handle=handle,
                    size=get_storage().stat(handle).st_size))
                inserted = True
        except BaseException as failure:
            if inserted:
                # COMMIT failed, or its answer was lost: the row may be there
                # and must not point at a removed file.  An orphan file (which
                # a sweep of unreferenced attachments may remove later) is the
                # safe failure.
                raise
            # No COMMIT was sent: the row is certainly not there.
            get_storage().remove(handle)
            if isinstance(failure, exc.IntegrityError) and self.exists(code):
                raise ExistsError("A file with this code already exists:", code) from None
            raise
        return redirect("./")  # relative: never the Host header a client sent

    @staticmethod
    def exists(code: str) -> bool:
        with get_db().connect() as connection:
            query = select(file_table.c.code).where(file_table.c.code == code)
            return connection.execute(query).first() is not None


class DownloadCmd(Command):
    """The file stored under a code, or 404."""

    path = "/download"
    parameters = [Parameter("code", CODE)]

    def render(self, req: Request, code: str) -> Response:
        with get_db().connect() as connection:
            handle = connection.execute(
                select(file_table.c.handle).where(file_table.c.code == code)).scalar()
        if handle is None:
            raise HTTPNotFound(f"No file with code {code!r}.")
        try:
            return download(handle)(req)
        except NotFoundError:  # an outage or a failing store is not "missing"
            raise HTTPNotFound(f"The file of code {code!r} is missing from the storage.") from None
