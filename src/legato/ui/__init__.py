"""The web dashboard: ``legato ui``, executions and their timelines in a browser.

Example::

    $ legato ui --store legato.db                  # http://127.0.0.1:8765/
    $ legato ui --store postgresql://app@db/prod --read-only
    $ LEGATO_UI_TOKEN=s3cret legato ui --host 0.0.0.0

Or as an ASGI app in your own server::

    from legato.ui import Settings, create_app
    app = create_app(Settings("legato.db", token="s3cret"))

Pages: ``/`` (executions, filtered and paged), ``/workflows/ID`` (one
execution: Gantt timeline, error, values, signals, events, children, and
the signal/cancel/resume buttons), ``/metrics`` (Prometheus) and
``/healthz``. It binds 127.0.0.1 by default; writes need the token when one
is set, and ``read_only`` hides and refuses them. A workflow that publishes
an event named ``"progress"`` (``{"done": n, "total": m, "message": ...}``)
gets a progress bar.

Needs the ``ui`` extra: ``pip install 'legato[ui]'`` (Starlette, uvicorn, Jinja2).
"""

from __future__ import annotations

from ._app import create_app
from ._progress import Progress, read_progress
from ._serve import is_loopback, serve
from ._settings import Settings

__all__ = ["Progress", "Settings", "create_app", "is_loopback", "read_progress", "serve"]
