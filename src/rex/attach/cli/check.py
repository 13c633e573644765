"""``rex attach check``: is the store ready to serve?  One line per check,
``ok`` or the reason; exit status 0 only if all pass.

Building the application already checks the settings and that the store
answers (as a server start does); then a probe (see `.probe`: check's own
object, at a handle no attachment has) is written, read back and compared,
served through a signed link, and deleted for good; on S3 and GCS the clock
is compared with the store's, since signatures fail beyond 15 minutes of
difference.
"""

from __future__ import annotations

import email.utils
import os
import secrets
import shlex
import stat as st
import time
from collections.abc import Callable
from typing import Any

import click
import requests
from webob import Request

from rex.core import Error, Rex, get_settings

from ..local import SECRET, LocalStorage
from ..objectstore import ObjectStorage
from ..settings import get_storage
from ..storage import Storage, as_file
from .command import Found, one_line, store_command
from .probe import discard, new_probe

MAX_SKEW = 300  # seconds: warn well before signatures fail (900)
TIMEOUT = 5  # seconds for each request of the checks


class CheckFailed(Exception):
    """A check's reason to fail."""


def where(storage: Storage) -> str:
    """Which store, for people."""
    if isinstance(storage, LocalStorage):
        return storage.path
    if isinstance(storage, ObjectStorage):
        return storage._where()
    return repr(storage)


class Checks:
    """Runs checks in order, printing a line for each."""

    def __init__(self) -> None:
        self.failed = 0

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            detail = check()
        except (Error, CheckFailed, OSError, requests.RequestException) as error:
            click.echo(f"{name + ':':<10} {one_line(error)}")
            self.failed += 1
            return False
        click.echo(f"{name + ':':<10} ok{f' ({detail})' if detail else ''}")
        return True


@store_command("check")
def check(app: Rex) -> None:
    """Checks that PACKAGE's store works: its settings, that it answers, a
    probe written, read back and deleted, signed links, and the clock
    against the store's."""
    storage = get_storage()
    content = secrets.token_hex(16).encode() + b"\n"
    probe = ""

    def reachable() -> str:
        storage.verify()
        return where(storage)

    def write() -> str:
        nonlocal probe
        probe = new_probe()
        storage.write(probe, as_file(content))
        return probe

    def read() -> str:
        with storage.open(probe) as stream:
            if stream.read() != content:
                raise CheckFailed("the probe read back differs from what was written")
        return f"{len(content)} bytes"

    def remove() -> str:
        discard(storage, probe)
        return ""

    checks = Checks()
    checks.run("settings", lambda: "")
    checks.run("storage", reachable)
    written = checks.run("write", write)
    for name, run in (("read", read), ("links", lambda: links(app, storage, probe, content)),
                      ("remove", remove)):
        if written:
            checks.run(name, run)
        else:
            click.echo(f"{name + ':':<10} not run: no probe was written")
    if isinstance(storage, LocalStorage):
        checks.run("secret", lambda: secret(storage))
    else:
        checks.run("clock", lambda: clock(storage))
    if checks.failed:
        raise Found()


def links(app: Rex, storage: Storage, handle: str, content: bytes) -> str:
    """A download link of the probe must serve it; on the local backend,
    through the application, and a tampered one must be refused."""
    url = storage.download_link(handle).url
    if isinstance(storage, LocalStorage):
        body = served(app, url)
        if body != content:
            raise CheckFailed(f"a signed link was not served: {body.decode(errors='replace')}")
        if served(app, url.replace("signature=", "signature=0")) == content:
            raise CheckFailed("a link with a wrong signature was served")
        return "a signed link served, a tampered one refused"
    response = requests.get(url, timeout=TIMEOUT)
    if response.status_code != 200 or response.content != content:
        raise CheckFailed(f"a signed link was not served: the store answered "
                          f"{response.status_code} {response.reason}")
    return "a signed link served by the store"


def served(app: Rex, url: str) -> bytes:
    response = Request.blank(url).get_response(app)
    return response.body if response.status_int == 200 else response.status.encode()


def secret(storage: LocalStorage) -> str:
    """The local signing key: set, or a file that only its owner can read."""
    if get_settings().attach_secret is not None:
        return "from the attach_secret setting"
    path = os.path.join(storage.path, SECRET)
    mode = st.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise CheckFailed(f"{path} may be read by other users (mode {mode:04o}): "
                          f"chmod 600 {shlex.quote(path)}")
    storage.secret  # raises if damaged
    return path


def clock(storage: ObjectStorage) -> str:
    """This machine's clock against the store's (its ``Date`` header)."""
    endpoint = endpoint_url(storage)
    before = time.time()
    response = requests.head(endpoint, timeout=TIMEOUT)
    now = (before + time.time()) / 2
    date = response.headers.get("Date")
    if date is None:
        raise CheckFailed(f"{endpoint} sends no Date header")
    skew = now - email.utils.parsedate_to_datetime(date).timestamp()
    ahead = "ahead of" if skew > 0 else "behind"
    text = f"{abs(skew):.0f} s {ahead} the store's"
    if abs(skew) > MAX_SKEW:
        raise CheckFailed(f"this machine's clock is {text}; signed requests and links fail "
                          "beyond 15 minutes: synchronize it (NTP)")
    return text


def endpoint_url(storage: Any) -> str:
    """The URL the storage's client talks to."""
    client = storage.client
    meta = getattr(client, "meta", None)
    return meta.endpoint_url if meta is not None else client.api_endpoint
