"""The writes: signal, cancel and resume a workflow (``POST``), guarded by :mod:`._guard`.

A browser's form gets redirected back to the execution page with a notice;
any other client (``Accept`` without ``text/html``) gets JSON. Refusals and
errors come back as a page or ``{"error": "..."}`` with the status code.

Example::

    $ curl -X POST -H 'Authorization: Bearer s3cret' http://127.0.0.1:8765/cancel/order-42
    {"ok":true,"id":"order-42","status":"cancelled"}
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import legato

from ._form import read_form
from ._guard import Refused, check_write
from ._render import page
from ._settings import Settings
from ._views import runtime

__all__ = ["cancel", "resume", "signal"]


async def signal(request: Request) -> Response:
    """``POST /signal/{id}`` with form fields ``name`` and ``payload`` (JSON, optional)."""

    async def act(rt: legato.Runtime, workflow_id: str, form: dict[str, str]) -> str:
        name = form.get("name", "").strip()
        text = form.get("payload", "").strip()
        if not name:
            raise Refused(400, "a signal needs a name")
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError as exc:
            raise Refused(400, f"the payload is not JSON ({exc}); e.g. {{\"approved\": true}}"
                          ) from None
        await rt.signal(workflow_id, name, payload)
        return f"signal {name!r} sent"

    return await _write(request, act)


async def cancel(request: Request) -> Response:
    """``POST /cancel/{id}``: cancel the workflow and its children."""

    async def act(rt: legato.Runtime, workflow_id: str, form: dict[str, str]) -> str:
        await rt.cancel(workflow_id)
        return "cancel requested"

    return await _write(request, act)


async def resume(request: Request) -> Response:
    """``POST /resume/{id}``: run a failed or cancelled workflow again from its last checkpoint."""

    async def act(rt: legato.Runtime, workflow_id: str, form: dict[str, str]) -> str:
        await rt.resume(workflow_id)
        return "resumed: pending until a worker takes it"

    return await _write(request, act)


_Act = Callable[[legato.Runtime, str, dict[str, str]], Awaitable[str]]


async def _write(request: Request, act: _Act) -> Response:
    """The one dance of every write: read the form, check the guard, act, answer."""
    settings: Settings = request.app.state.settings
    workflow_id: str = request.path_params["workflow_id"]
    rt = runtime(request)
    try:
        form = await read_form(request)
        check_write(request, settings, form.get("token") or None)
        done = await act(rt, workflow_id, form)
    except Refused as exc:
        return _refusal(request, exc.status, exc.message)
    except legato.WorkflowNotFound:
        return _refusal(request, 404, f"no workflow has the id {workflow_id!r}")
    except legato.LegatoError as exc:
        return _refusal(request, 409, str(exc))
    status = (await rt.handle(workflow_id).status()).value
    if _wants_html(request):
        url = f"/workflows/{quote(workflow_id)}?done={quote(done)}"
        return RedirectResponse(url, status_code=303)
    return JSONResponse({"ok": True, "id": workflow_id, "status": status, "done": done})


def _refusal(request: Request, status: int, message: str) -> Response:
    # a 401 names the scheme that would work (RFC 9110)
    headers = {"WWW-Authenticate": 'Bearer realm="legato"'} if status == 401 else None
    if _wants_html(request):
        title = {401: "Token needed", 403: "Refused", 404: "Not found"}.get(status, "Not done")
        response = page(request, "message.html", status, title=title, message=message)
        response.headers.update(headers or {})
        return response
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")
