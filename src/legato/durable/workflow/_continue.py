"""``legato.continue_as_new``: a workflow that loops forever keeps a short history."""

from __future__ import annotations

from typing import Any, NoReturn

from ..._errors import LegatoError
from ..engine import ContinueAsNew, current_scope
from ._workflow import lookup

__all__ = ["continue_as_new"]


def continue_as_new(*args: Any, **kwargs: Any) -> NoReturn:
    """End this run and start the same workflow id afresh with these arguments.

    The new run starts with an empty history (and a new run id), in the same
    worker, at once; the run that ended is kept as the previous run
    (``info.previous_run_id``, ``rt.history(id, run_id=...)``); only the one
    before the current run is kept, so a workflow that polls every hour for
    a year holds two runs' records at most. Signals not yet consumed wait for
    the new run; events stay. As Temporal's ``continue_as_new``; DBOS has no
    equivalent.

    Example::

        @legato.workflow
        async def poll(cursor: int) -> None:
            for _ in range(100):
                cursor = await fetch_since(cursor)
                await legato.sleep("1h")
            legato.continue_as_new(cursor)

    Raises:
        LegatoError: outside a workflow.
        TypeError, SerializationError: the arguments don't fit the workflow or
            can't be stored.
    """
    scope = current_scope()
    if scope is None:
        raise LegatoError(
            "legato.continue_as_new() was called outside a workflow; call it from the "
            "body of a @legato.workflow")
    run = scope.run
    wf = lookup(run.name)
    if wf is None:  # pragma: no cover - a running workflow is registered
        raise LegatoError(f"workflow {run.name!r} is not registered in this process")
    raise ContinueAsNew(wf.encode_input(run.serializer, args, kwargs))
