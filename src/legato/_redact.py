"""Hiding secrets in text that legato stores or shows.

Recorded errors (message, notes, traceback, arguments) and the stores' display
URLs pass through here, so a password in a connection URL never reaches the
store or a ``repr``. Two shapes are masked:

* credentials in a URL: ``scheme://user:password@host`` → ``scheme://user:***@host``;
* secret-named keys with a value: ``password=...``, ``token=...``,
  ``api_key=...``, ``client_secret=...`` (query strings, DSNs, keyword
  reprs), and quoted ones as in a dict's repr: ``'password': '...'``.

Masking errs on the side of hiding: an unusual text may lose a little more than
the secret, never the other way round. Free prose such as ``password: hunter2``
(unquoted key and colon) is not recognized; keep secrets out of messages.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MASK", "is_secret_name", "redact", "redact_url"]

MASK = "***"

# Starts with the literal "://" so the scan stays linear on huge texts (a pattern
# starting with the scheme would retry at every letter). The greedy password runs
# to the last "@" before the host, as urlsplit does, so "p@ss" is hidden whole.
_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s/?#@:]{0,256}):(?P<secret>[^\s/?#]{0,1024})@")

_SECRET_KEY = r"(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key)"
_SECRET_NAME = re.compile(r"[\w-]*" + _SECRET_KEY, re.IGNORECASE)
_KEY_VALUE = re.compile(
    _SECRET_KEY
    + r"""(?:\s*=\s*|['"]\s*[:=]\s*)"""  # key=value, or a quoted key: 'key': value
    + r"""(?:(?P<q>['"])(?P<quoted>[^'"\r\n]{0,4096})(?P=q)"""  # a quoted value, or a bare one
    + r"""|(?P<bare>[^\s&;,'"()\[\]{}<>]{1,4096}))""",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with URL passwords and ``password=...``-style values replaced by ``***``.

    Use it on free text (error messages, tracebacks); for one URL,
    :func:`redact_url` also reads percent-encoded and odd URLs the way a
    URL parser does.

    Example::

        >>> redact("GET http://bob:s3cret@api.example/v1 failed (token=abc123)")
        'GET http://bob:***@api.example/v1 failed (token=***)'
    """
    if "://" in text:
        text = _URL_CREDENTIALS.sub(_mask_url, text)
    return _KEY_VALUE.sub(_mask_value, text)


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query values) replaced by ``***``, for display.

    Example::

        >>> redact_url("postgresql://app:s3cret@db/prod?sslpassword=x&schema=s")
        'postgresql://app:***@db/prod?sslpassword=***&schema=s'
    """
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # e.g. a bad port or bracket: the text patterns still apply
        netloc = ""
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:  # same split as urlsplit: the password runs to the last "@"
        user = userinfo.partition(":")[0]
        url = url.replace(netloc, f"{user}:{MASK}@{host}", 1)
    return redact(url)


def is_secret_name(name: str) -> bool:
    """True for a key or attribute name whose value is a secret (``db_password``, ``token``).

    Example::

        >>> is_secret_name("api_token"), is_secret_name("max_tokens")
        (True, False)
    """
    return _SECRET_NAME.fullmatch(name) is not None


def _mask_url(match: re.Match[str]) -> str:
    return f"://{match['user']}:{MASK}@"


def _mask_value(match: re.Match[str]) -> str:
    group = "quoted" if match["q"] else "bare"
    start, end = match.start(group) - match.start(), match.end(group) - match.start()
    whole = match[0]
    return whole[:start] + MASK + whole[end:]
