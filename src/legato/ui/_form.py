"""A write's form fields, read without a multipart library (the forms are URL-encoded)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from ._guard import Refused

__all__ = ["MAX_BODY", "read_form"]

MAX_BODY = 1 << 20  # bytes: a signal's payload and a few fields


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded body (an empty body has none); the last of a repeated name.

    >>> await read_form(request)  # doctest: +SKIP
    {'name': 'approval', 'payload': '{"approved": true}'}

    Raises:
        Refused: (413) a body over 1 MiB, or (415) one that isn't URL-encoded.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, f"the request body is over {MAX_BODY:,} bytes")
    if not body:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "send the fields URL-encoded (application/x-www-form-urlencoded), "
                           "e.g. curl -d name=approval -d 'payload={\"ok\": true}'")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
