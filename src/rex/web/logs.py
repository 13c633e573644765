"""The logs of ``rex serve``: an access line per request, with the secrets
of its query string removed, and the error log, where the causes of 5xx
answers (logged by rex.web on the ``rex`` loggers) go too; as text lines or
as JSON objects, one per line.

The access log goes to standard output, the error log to standard error.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

# Query parameters whose value is a secret (compared without case): the
# signatures of direct links (rex.attach's own, S3's, GCS's) and an S3 POST
# policy, and any name that says it holds a secret.
SECRET_PARAMETERS = frozenset({"signature", "x-amz-signature", "x-goog-signature", "policy"})
SECRET_WORDS = ("secret", "password", "token")
REDACTED = "REDACTED"

# Characters of a request target kept as they are (RFC 3986 pchar, "/", "?",
# and "%" so that the client's own escapes stay); anything else (a space, a
# control character, a byte beyond ASCII) is percent-encoded, so that a line
# is one line and a field one word.
_TARGET_SAFE = "/?%:@!$&'()*+,;=-._~"

_QUERY = re.compile(r"\?([^\s\"'<>]+)")  # a query string in a message

TEXT_DATE = "[%Y-%m-%d %H:%M:%S %z]"  # gunicorn's
JSON_DATE = "%Y-%m-%dT%H:%M:%S%z"


def is_secret(name: str) -> bool:
    """Does a query parameter of this name hold a secret?"""
    name = name.lower()
    return name in SECRET_PARAMETERS or any(word in name for word in SECRET_WORDS)


def redact_query(query: str) -> str:
    """The query string with the value of every secret parameter replaced
    by ``REDACTED``; the rest as the client sent it."""
    parts = []
    for part in query.split("&"):
        name = part.partition("=")[0]
        if is_secret(unquote(name.replace("+", " "))):
            part = f"{name}={REDACTED}"
        parts.append(part)
    return "&".join(parts)


def request_target(environ: dict) -> str:
    """The path and query of a request, as the client sent them but with
    secrets redacted and unsafe characters percent-encoded."""
    raw = environ.get("RAW_URI") or quote(environ.get("PATH_INFO", ""))
    path, sep, query = raw.partition("?")
    if not sep:
        query = environ.get("QUERY_STRING", "")
        sep = "?" if query else ""
    target = path + sep + redact_query(query)
    return quote(target.encode("latin-1", "replace"), safe=_TARGET_SAFE)


class RedactQueries(logging.Filter):
    """Redacts the secrets of every query string in a message of the error
    log: gunicorn names a request that failed by its URI."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _QUERY.sub(lambda match: "?" + redact_query(match.group(1)), message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def access_fields(status: str | int | None, sent: int | None, environ: dict,
                  duration: timedelta) -> dict[str, Any]:
    """What the access log says of one request."""
    code = str(status or "").partition(" ")[0]
    user = environ.get("REMOTE_USER") or None
    return {
        "remote": environ.get("REMOTE_ADDR") or None,
        "user": quote(user.encode("latin-1", "replace"), safe="@.-_+") if user else None,
        "method": environ.get("REQUEST_METHOD", ""),
        "path": request_target(environ),
        "protocol": environ.get("SERVER_PROTOCOL", ""),
        "status": int(code) if code.isdigit() else None,
        "bytes": sent or 0,
        "duration": round(duration.total_seconds(), 6),
    }


def access_line(fields: dict[str, Any]) -> str:
    """The text form: ``REMOTE USER "METHOD PATH PROTOCOL" STATUS BYTES SECONDS``."""
    return (f"{fields['remote'] or '-'} {fields['user'] or '-'} "
            f"\"{fields['method']} {fields['path']} {fields['protocol']}\" "
            f"{fields['status'] or '-'} {fields['bytes']} {fields['duration']:.3f}s")


class TextLogger(glogging.Logger):
    """gunicorn's logger with the access line above, and the ``rex``
    loggers sent to the error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self._format(self.error_log, self.error_formatter())
        self._format(self.access_log, self.access_formatter())
        for handler in self.error_log.handlers:
            if not any(isinstance(known, RedactQueries) for known in handler.filters):
                handler.addFilter(RedactQueries())
        rex = logging.getLogger("rex")
        rex.handlers = list(self.error_log.handlers)
        rex.setLevel(self.loglevel)
        rex.propagate = False

    @staticmethod
    def _format(logger: logging.Logger, formatter: logging.Formatter) -> None:
        for handler in logger.handlers:
            if getattr(handler, "_gunicorn", False):
                handler.setFormatter(formatter)

    def error_formatter(self) -> logging.Formatter:
        return logging.Formatter(self.error_fmt, TEXT_DATE)

    def access_formatter(self) -> logging.Formatter:
        return logging.Formatter("%(asctime)s %(message)s", TEXT_DATE)

    def access(self, resp: Any, req: Any, environ: dict, request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        # gunicorn counts what it writes, not what it sends with sendfile.
        sent = (getattr(resp, "sent", None) or 0) + getattr(getattr(resp, "sock", None),
                                                             "take_sendfile_count", lambda: 0)()
        fields = access_fields(getattr(resp, "status", None), sent, environ, request_time)
        self.access_log.info("%s", access_line(fields), extra=fields)


class JsonLogger(TextLogger):
    """The same logs as JSON objects, one per line: ``time``, ``level``,
    ``logger``, ``process``, ``message``, and for a request the access
    fields (``remote``, ``user``, ``method``, ``path``, ``protocol``,
    ``status``, ``bytes``, ``duration`` in seconds); a traceback is in
    ``exc_info``."""

    def error_formatter(self) -> logging.Formatter:
        return _json_formatter()

    def access_formatter(self) -> logging.Formatter:
        return _json_formatter()


def _json_formatter() -> JsonFormatter:
    return JsonFormatter("{asctime}{levelname}{name}{process}{message}", style="{",
                         datefmt=JSON_DATE,
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
