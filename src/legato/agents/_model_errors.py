"""Errors of model servers, and how an HTTP answer becomes one.

The tree::

    ModelError                 status and retry_after attributes; not retried
    ├── RateLimited            429: retried, after Retry-After when the server sends one
    └── ModelUnavailable       5xx, 408, timeouts, connection errors: retried

A model server that is slow is :class:`ModelUnavailable` (retried), not a
``TimeoutError``: ``TimeoutError`` from a tool means its grant's or its own
time ran out and the call was cancelled, which the retry policy leaves alone.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping

from .._errors import LegatoError

__all__ = [
    "ModelError",
    "ModelUnavailable",
    "RateLimited",
    "error_for_status",
    "retry_after",
    "server_message",
]


class ModelError(LegatoError):
    """A model server refused or failed a request; not retried unless a subclass.

    Raised as is for answers that can't succeed by asking again: 400, 401,
    403, 404, 422 and an answer that isn't chat-completions JSON.

    Example::

        try:
            await client.complete("hi", model="gpt-4o-mini")
        except legato.agents.ModelError as exc:
            print(exc.status, exc)      # 401 the model server at ... refused the API key ...

    Attributes:
        status: the HTTP status, or ``None`` when no answer came (connection error).
        retry_after: seconds the server asked to wait before trying again, or ``None``.
    """

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.message = message
        self.status = status
        self.retry_after = retry_after
        # args are the constructor's, so a recorded error is rebuilt as itself
        super().__init__(message, status, retry_after)

    def __str__(self) -> str:
        return self.message


class RateLimited(ModelError):
    """HTTP 429: too many requests or tokens; retried after ``retry_after`` seconds.

    Example::

        except legato.agents.RateLimited as exc:
            await asyncio.sleep(exc.retry_after or 1)
    """


class ModelUnavailable(ModelError):
    """The server is down, overloaded (5xx, 408), slow (timeout) or unreachable; retried.

    Example::

        except legato.agents.ModelUnavailable:
            ...   # try another provider
    """


def error_for_status(where: str, status: int, headers: Mapping[str, str],
                     said: str) -> ModelError:
    """The error for an HTTP error answer from the model server described by ``where``.

    ``said`` is the server's own explanation (see :func:`server_message`).

    >>> error_for_status("the model server at http://x/v1", 429, {"Retry-After": "3"},
    ...                  "slow down").retry_after
    3.0
    """
    if status == 429:
        wait = retry_after(headers)
        when = f"it asks to wait {wait:g} s" if wait is not None else "no Retry-After given"
        return RateLimited(
            f"{where} is rate-limiting requests (429: {said}); {when}. Retried by the "
            "retry policy; if it persists, lower concurrency or raise your quota",
            status, wait,
        )
    if status >= 500 or status == 408:
        return ModelUnavailable(
            f"{where} failed or is overloaded ({status}: {said}); retried by the retry "
            "policy; if it persists, check the server's health and logs",
            status, retry_after(headers),
        )
    return ModelError(f"{where} rejected the request ({status}: {said}); {_fix(status)}",
                      status)


def server_message(text: str) -> str:
    """The server's own explanation from an error body, shortened."""
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message) if message else text
    except ValueError:
        pass
    text = " ".join(text.split())
    return text[:300] + "..." if len(text) > 300 else text or "no details"


def _fix(status: int) -> str:
    if status == 401:
        return "check OPENAI_API_KEY (or the api_key= given to OpenAIChat)"
    if status == 403:
        return "the API key is not allowed to use this model or endpoint; check its permissions"
    if status == 404:
        return ("check the model name and that base_url ends where the API starts "
                "(usually /v1); local servers only serve the models they have loaded")
    return "fix the request (messages, model, max_tokens, extra fields) and try again"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks to wait, else ``None``.

    Accepts delta-seconds and HTTP dates; a date in the past means ``0``.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "1500"})
    (2.0, 1.5)
    """
    lower = {k.lower(): v for k, v in headers.items()}
    millis = _number(lower.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lower.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
