"""The demo's pages: the list with its upload form, upload, download and
delete."""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import delete, exc, insert, select
from webob import Request, Response
from webob.exc import HTTPNotFound

from rex.attach import Attachment, AttachmentVal, download, get_storage, upload
from rex.core import Error, ExistsError, IntVal, NotFoundError, StrVal, TooLargeError
from rex.db import get_db
from rex.web import Command, Parameter
from rex.web.form import MAX_PART_HEADERS_SIZE

from . import csrf
from .database import file_table
from .fields import CODE, TITLE, TOKEN, original_name
from .forms import FormCommand, Refusal, submitted
from .listing import find_file, list_files
from .messages import size_limit
from .notice import read_notice, redirect_with_notice
from .page import html_page

log = logging.getLogger("rex.attach_demo")


def index_page(req: Request, page: int = 1, notice: str | None = None,
               status: str = "200 OK", refusal: Refusal | None = None) -> Response:
    """The list, a page of it, with the upload form (again, if `refusal`:
    then without the list if it cannot be read, as in an outage)."""
    try:
        listing = list_files(page)
    except Error:
        if refusal is None:
            raise
        listing = None
    return html_page(req, "index.html", status, listing=listing, notice=notice,
                     form=refusal or Refusal({}, {}, None), code=CODE, title=TITLE,
                     size_limit=size_limit())


class IndexCmd(Command):
    """The list of stored files, newest first, and the upload form."""

    path = "/"
    parameters = [
        Parameter("page", IntVal(1), default=1),
        Parameter("notice", StrVal(max_length=1000), default=None),
    ]

    def render(self, req: Request, page: int, notice: str | None) -> Response:
        return index_page(req, page, read_notice(notice))


class UploadCmd(FormCommand):
    """Stores an uploaded file under a new code, then shows the list.

    The form sends its code and title before its file: a bad or taken code
    is refused before the file is read, and so is a form longer than a file
    of ``attach_max_size`` could make it.
    """

    path = "/upload"
    methods = ("POST",)
    parameters = [
        Parameter(csrf.FIELD, TOKEN, default=None),
        Parameter("code", CODE),
        Parameter("title", TITLE),
        Parameter("attachment", AttachmentVal()),
    ]
    # The most that the parts other than the file can add to the body: each
    # part's headers and delimiter, and the longest values, in UTF-8.
    FIELDS_SIZE = (len(parameters) * (MAX_PART_HEADERS_SIZE + 512)
                   + 4 * (TOKEN.max_length + CODE.max_length + TITLE.max_length))

    def check_request(self, req: Request) -> None:
        limit = get_storage().max_size
        if limit is not None and (req.content_length or 0) > limit + self.FIELDS_SIZE:
            raise TooLargeError(f"Expected a file of at most {limit} bytes, got a form of "
                                f"{req.content_length} bytes with the file in field:", "attachment")

    def check_value(self, name: str, value: str) -> None:
        if name == "code" and self.exists(value):
            raise ExistsError("A file with this code already exists:", value)

    def render(self, req: Request, csrf_token: str | None, code: str, title: str,
               attachment: Attachment) -> Response:
        submitted(req).check(req)
        handle = upload(attachment)
        inserted = False  # the INSERT went through: only COMMIT is left
        try:
            with get_db().begin() as connection:
                connection.execute(insert(file_table).values(
                    code=code, title=title.strip(), handle=handle,
                    name=original_name(attachment.name), size=get_storage().stat(handle).st_size,
                    created=datetime.datetime.now(datetime.timezone.utc)))
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
        return redirect_with_notice("uploaded", code)

    def page(self, req: Request, status: str, refusal: Refusal) -> Response:
        return index_page(req, status=status, refusal=refusal)

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


class DeleteCmd(FormCommand):
    """``GET /delete?code=CODE`` asks to confirm; its form POSTs the
    deletion, then shows the list.

    The row goes first, in a transaction of its own; its attachment is
    removed only once that has committed (the storage keeps a tombstone).
    No row is ever left pointing at a missing file: when the outcome of the
    COMMIT is unclear, or the storage fails, the attachment stays, an
    orphan, the safe failure.
    """

    path = "/delete"
    methods = ("GET", "HEAD", "POST")
    parameters = [Parameter(csrf.FIELD, TOKEN, default=None), Parameter("code", CODE)]

    def render(self, req: Request, csrf_token: str | None, code: str) -> Response:
        if req.method != "POST":
            return self.confirmation(req, code)
        submitted(req).check(req)
        with get_db().begin() as connection:
            handle = connection.execute(delete(file_table).where(file_table.c.code == code)
                                        .returning(file_table.c.handle)).scalar()
        if handle is None:
            raise NotFoundError("No file with code:", code)
        try:
            get_storage().remove(handle)
        except NotFoundError:
            pass  # removed already: what was asked is done
        except Error:
            log.warning("The file of code %s is deleted; its attachment is left, an orphan: %s",
                        code, handle, exc_info=True)
        return redirect_with_notice("deleted", code)

    def page(self, req: Request, status: str, refusal: Refusal) -> Response:
        return self.confirmation(req, refusal.values.get("code") or req.GET.get("code", ""),
                                 status, refusal)

    @staticmethod
    def confirmation(req: Request, code: str, status: str = "200 OK",
                     refusal: Refusal | None = None) -> Response:
        """The page that asks to confirm a deletion; 404 when there is no
        file of that code (any more).  A refused form is shown even when the
        file cannot be looked up (an invalid code, an outage)."""
        try:
            file = find_file(CODE(code))
        except Error:
            if refusal is None:
                raise
            file = None
        if file is None and refusal is None:
            status = "404 Not Found"
        return html_page(req, "delete.html", status, file=file, code=code,
                         form=refusal or Refusal({}, {}, None))
