"""Pages from Jinja2 templates, and the filters they use to show times and durations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

import legato

from ._settings import Settings

__all__ = ["ago", "environment", "page", "seconds", "when"]


def when(value: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second (``2025-01-02 03:04:05``)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    """A duration: ``12.3 ms``, ``4.56 s``, ``3.2 min``, ``1.5 h``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 120:
        return f"{value:.2f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago: ``5 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``."""
    if value is None:
        return "-"
    age = max(0.0, ((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if age >= size:
            return f"{age // size:.0f} {unit} ago"
    return f"{age:.0f} s ago"


def environment() -> jinja2.Environment:
    """The templates shipped in ``legato/ui/templates``, HTML-escaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("legato.ui", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, seconds=seconds, ago=ago)
    env.globals.update(version=legato.__version__, statuses=[s.value for s in legato.Status])
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` plus the request and the dashboard's settings."""
    env: jinja2.Environment = request.app.state.templates
    settings: Settings = request.app.state.settings
    store = request.app.state.runtime.store.url
    html = env.get_template(template).render(request=request, settings=settings, store=store,
                                             status_code=status_code, **context)
    return HTMLResponse(html, status_code=status_code)
