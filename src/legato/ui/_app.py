"""The dashboard as an ASGI application: routes, the token login, and the store's lifetime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import legato

from . import _actions, _views
from ._guard import COOKIE, token_matches
from ._metrics import CONTENT_TYPE, exposition, tally
from ._render import environment, page
from ._settings import Settings

__all__ = ["create_app"]

_STATIC = Path(__file__).parent / "static"
_Next = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings, runtime: legato.Runtime | None = None) -> Starlette:
    """The dashboard for ``settings.store``, as an ASGI app (serve it with uvicorn).

    Without ``runtime`` it opens a client :class:`legato.Runtime` (no worker)
    when the server starts and closes it when the server stops; an open one
    given here is used as it is (and left open).

    Example::

        app = create_app(Settings("legato.db", read_only=True))
        uvicorn.run(app, host="127.0.0.1", port=8765)
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        async with legato.Runtime(settings.store, worker=False) as rt:
            app.state.runtime = rt
            yield

    middleware = [Middleware(BaseHTTPMiddleware, dispatch=token_login)]
    if settings.allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware,
                                     allowed_hosts=list(settings.allowed_hosts)))
    write = ["POST"]
    app = Starlette(
        exception_handlers={legato.LegatoError: store_trouble},
        routes=[
            Route("/", _views.executions),
            Route("/workflows/{workflow_id:path}", _views.execution),
            Route("/signal/{workflow_id:path}", _actions.signal, methods=write),
            Route("/cancel/{workflow_id:path}", _actions.cancel, methods=write),
            Route("/resume/{workflow_id:path}", _actions.resume, methods=write),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=_STATIC), name="static"),
        ],
        middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = environment()
    return app


async def token_login(request: Request, call_next: _Next) -> Response:
    """``?token=T`` on any page: remember the token in a cookie and drop it from the URL.

    The cookie is ``HttpOnly`` and ``SameSite=Strict``: pages of other sites
    can neither read it nor send it.
    """
    supplied = request.query_params.get("token")
    if supplied is None or request.method != "GET":
        return await call_next(request)
    settings: Settings = request.app.state.settings
    if not token_matches(settings, supplied):
        return page(request, "message.html", 403, title="Wrong token",
                    message="that is not this dashboard's token; reading needs none, "
                            "writes need the one given to `legato ui --token`")
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
    response.set_cookie(COOKIE, supplied, httponly=True, samesite="strict")
    return response


async def store_trouble(request: Request, exc: Exception) -> Response:
    """A legato error no page expected (the store went away, most likely): 503, saying so."""
    return page(request, "message.html", 503, title="The store did not answer",
                message=f"{exc} (the page will work again once the store answers)")


async def metrics(request: Request) -> Response:
    """``GET /metrics``: the Prometheus text format (see :mod:`._metrics`)."""
    text = exposition(await tally(_views.runtime(request)))
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    """``GET /healthz``: ``ok`` when the store answers."""
    await _views.runtime(request).list(limit=1)
    return PlainTextResponse("ok")
