"""Who may change a workflow from the dashboard: read-only mode, the token, same-origin forms.

Reads are open (the dashboard binds 127.0.0.1 by default). A write — signal,
cancel, resume — is refused with a message saying what to do:

- 403 when the dashboard is read-only;
- 403 when the request comes from another site's page (its ``Origin`` is
  not this dashboard), so a web page can't drive a local dashboard;
- 401 when a token is set and the request carries none, 403 when it carries
  a wrong one. The token comes in the ``Authorization: Bearer`` header, the
  ``token`` form field, or the cookie set by opening the dashboard once at
  ``/?token=TOKEN`` (the URL ``legato ui`` prints).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from ._settings import Settings

__all__ = ["COOKIE", "Refused", "check_write", "token_matches"]

COOKIE = "legato_token"


class Refused(Exception):
    """A write the dashboard won't do: ``status`` (401 or 403) and what to do instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def token_matches(settings: Settings, supplied: str | None) -> bool:
    """Whether ``supplied`` is the dashboard's token (compared in constant time)."""
    if settings.token is None or supplied is None:
        return False
    return hmac.compare_digest(supplied.encode(), settings.token.encode())


def check_write(request: Request, settings: Settings, form_token: str | None = None) -> None:
    """Raise :class:`Refused` unless this request may change workflows.

    >>> check_write(request, Settings("legato.db", read_only=True))  # doctest: +SKIP
    Traceback (most recent call last):
    Refused: this dashboard is read-only ...
    """
    if settings.read_only:
        raise Refused(403, "this dashboard is read-only (started with --read-only): change "
                           "workflows with the legato command, e.g. `legato cancel ID`")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Refused(403, f"refused a write from another site's page ({origin}): use the "
                           "dashboard's own buttons")
    if settings.token is None:
        return
    supplied = _bearer(request) or form_token or request.cookies.get(COOKIE)
    if not supplied:
        raise Refused(401, "this dashboard needs its token for writes: open the URL "
                           "`legato ui` printed (ending in ?token=...), or send the header "
                           "'Authorization: Bearer TOKEN'")
    if not token_matches(settings, supplied):
        raise Refused(403, "wrong token: writes need the token given to `legato ui --token`")


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
