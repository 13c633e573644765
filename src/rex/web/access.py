"""Permissions and the `access` setting that grants them to packages."""

from __future__ import annotations

from typing import Any

from webob import Request
from webob.exc import HTTPException, HTTPForbidden, HTTPUnauthorized

from rex.core import (Error, Extension, Initialize, MapVal, MaybeVal, Setting, StrVal, cached,
                      get_settings)

DEFAULT_PERMISSION = "authenticated"


class AccessSetting(Setting):
    """Maps a package name to the permission needed to use its commands and
    locations; packages not listed need ``authenticated``.  Values from
    several sources are merged, later ones winning per package."""

    name = "access"
    validate = MapVal(StrVal(r"[\w.]+"), StrVal(r"\w+"))
    default: dict[str, str] = {}

    @classmethod
    def merge(cls, old: Any, new: Any) -> Any:
        return {**old, **new}


class AuthChallengeSetting(Setting):
    """The ``WWW-Authenticate`` challenge of a 401 answer: how a client
    without a user signs in where the application is (what the
    authenticating proxy or server accepts).  Unset: no challenge applies,
    and a request without a user that lacks a permission gets 403, since a
    401 must carry one (RFC 9110, 15.5.2)."""

    name = "auth_challenge"
    validate = MaybeVal(StrVal(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+( [ -~]*)?", max_length=1000))
    default = 'Bearer realm="rex"'


class Permission(Extension):
    """A named test of a request: does it have this permission?"""

    name: str

    def __call__(self, req: Request) -> bool:
        raise NotImplementedError


class AnybodyPermission(Permission):
    """Every request."""

    name = "anybody"

    def __call__(self, req: Request) -> bool:
        return True


class AuthenticatedPermission(Permission):
    """Requests from a user that the server authenticated (``REMOTE_USER``)."""

    name = "authenticated"

    def __call__(self, req: Request) -> bool:
        return bool(req.remote_user)


class NobodyPermission(Permission):
    """No request."""

    name = "nobody"

    def __call__(self, req: Request) -> bool:
        return False


@cached
def permissions() -> dict[str, type[Permission]]:
    return {permission.name: permission for permission in Permission.all()}


def package_permission(package: str) -> str:
    """The permission that the `access` setting requires for a package."""
    return get_settings().access.get(package, DEFAULT_PERMISSION)


def has_permission(req: Request, name: str) -> bool:
    return permissions()[name]()(req)


def refusal(req: Request) -> HTTPException:
    """The answer to a request that lacks a permission: 403 to a user (who
    would gain nothing by signing in again); to a request without a user,
    401 with the challenge of `auth_challenge`, or 403 when none is set."""
    challenge = get_settings().auth_challenge
    if req.remote_user or challenge is None:
        return HTTPForbidden()
    return HTTPUnauthorized(headers={"WWW-Authenticate": challenge})


class CheckAccess(Initialize):
    """Every permission named in `access` must exist."""

    def __call__(self) -> None:
        known = permissions()
        for package, name in sorted(get_settings().access.items()):
            if name not in known:
                raise Error("Got unknown permission:", name).wrap(
                    "Known permissions:", ", ".join(sorted(known))).wrap(
                    "While checking access to package:", package)
