"""The pages: the executions list and one execution, each with a fragment for live refresh.

A request with the header ``X-Legato-Fragment: 1`` (sent by the page's own
script) gets only the part of the page that changes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

import legato

from ._listing import WINDOWS, BadFilter, ListQuery
from ._progress import EVENT, Progress, read_progress
from ._render import page
from ._settings import Settings
from ._timeline import chart
from ._values import show

__all__ = ["execution", "executions", "runtime"]


def runtime(request: Request) -> legato.Runtime:
    """The dashboard's client Runtime (opened with the app, no worker)."""
    rt: legato.Runtime = request.app.state.runtime
    return rt


def _fragment(request: Request) -> bool:
    return request.headers.get("x-legato-fragment") == "1"


async def executions(request: Request) -> Response:
    """``GET /``: executions, newest first, filtered and paged on the server."""
    settings: Settings = request.app.state.settings
    try:
        query = ListQuery.parse(request.query_params)
    except BadFilter as exc:
        return page(request, "message.html", 400, title="Bad filter", message=str(exc))
    now = datetime.now(UTC)
    rows = await runtime(request).list(**query.list_args(settings.page_size, now))
    more = len(rows) > settings.page_size
    rows = rows[:settings.page_size]
    progress = await _progress(runtime(request), [r for r in rows if not r.status.finished])
    context: dict[str, Any] = dict(
        query=query, rows=rows, more=more, progress=progress, now=now, windows=list(WINDOWS),
        first=query.page * settings.page_size + 1)
    return page(request, "_rows.html" if _fragment(request) else "list.html", **context)


async def _progress(rt: legato.Runtime, infos: list[legato.WorkflowInfo]
                    ) -> dict[str, Progress]:
    """Each unfinished workflow's published progress (one small read each, at once)."""
    values = await asyncio.gather(*(rt.handle(i.id).get_event(EVENT, timeout=0) for i in infos))
    found = {i.id: read_progress(v) for i, v in zip(infos, values, strict=True)}
    return {k: v for k, v in found.items() if v is not None}


async def execution(request: Request) -> Response:
    """``GET /workflows/{id}``: timeline, error, values, signals, events and children."""
    workflow_id = request.path_params["workflow_id"]
    try:
        info = await runtime(request).get(workflow_id)
    except legato.WorkflowNotFound:
        return page(request, "message.html", 404, title="Not found",
                    message=f"no workflow has the id {workflow_id!r} in this store")
    now = datetime.now(UTC)
    events = {k: show(v) for k, v in info.events.items()}
    context: dict[str, Any] = dict(
        info=info, now=now, chart=chart(info, now), events=events,
        progress=read_progress(info.events.get(EVENT)),
        args=[show(a) for a in info.args], kwargs={k: show(v) for k, v in info.kwargs.items()},
        output=show(info.output), signals=[s for s in info.steps if s.kind == "signal"],
        notice=request.query_params.get("done"))
    return page(request, "_execution.html" if _fragment(request) else "execution.html",
                **context)
