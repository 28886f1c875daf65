"""``legato.patched``: change workflow code while workflows are in flight.

A workflow replays its history, so code changed under a running workflow
would meet records it doesn't expect (a ``NonDeterminismError``). Guard the
change instead::

    if legato.patched("confirm-before-charge"):
        await confirm(order)          # the new code
    await charge(order)

Where no history reaches this point (a new workflow, or one whose history
ends before it), ``patched`` records a marker and returns ``True``. Where
the history goes on past it without the marker (a workflow that ran this
part with the old code), it returns ``False`` and takes no position, so the
old code replays as it ran. Once no workflow started before the change is
left, replace the call with ``legato.deprecate_patch("confirm-before-charge")``
and keep only the new code; when no workflow with the marker is left either,
delete that line too.
"""

from __future__ import annotations

from ..engine import Run, Scope, current_scope

__all__ = ["deprecate_patch", "patched"]

_KIND = "patch"


def patched(patch_id: str) -> bool:
    """Whether to run the new code of change ``patch_id`` (recorded inside workflows).

    ``True`` outside a workflow, in a new workflow, and where a workflow's
    history doesn't reach this point; ``False`` where its history shows it
    ran past this point without the change. Example::

        if legato.patched("send-receipt"):
            await send_receipt(order)

    Args:
        patch_id: names the change; each change needs its own id.
    """
    _check(patch_id)
    scope = current_scope()
    if scope is None:
        return True
    position, recorded = _peek(scope)
    if recorded is None:  # no history here: the new code, from now on
        scope.next_position()
        scope.run.commit_later(position, _KIND, patch_id, None)
        return True
    if recorded == patch_id:
        scope.next_position()
        return True
    return False


def deprecate_patch(patch_id: str) -> None:
    """Retire change ``patch_id`` once no workflow runs the code before it.

    Workflows that recorded the change's marker still find it here; new ones
    record nothing. Example::

        legato.deprecate_patch("send-receipt")   # was: if legato.patched("send-receipt"):
        await send_receipt(order)
    """
    _check(patch_id)
    scope = current_scope()
    if scope is not None and _peek(scope)[1] == patch_id:
        scope.next_position()


def _check(patch_id: str) -> None:
    if not isinstance(patch_id, str) or not patch_id:
        raise ValueError(f"a patch needs a non-empty id naming the change, such as "
                         f"patched('send-receipt'), not {patch_id!r}")


def _peek(scope: Scope) -> tuple[str, str | None]:
    """The next position, and the id of the patch marker recorded there.

    ``None`` when the history doesn't reach this position (a new run, or one
    whose history ends before it); ``""`` when it holds something else there
    or went past it: a record at a later position of the scope, or under this
    one (a task or a primitive here, a wait in progress).
    """
    run: Run = scope.run
    if run.unwinding is not None:
        raise run.unwinding
    index = scope.counter + 1
    position = f"{scope.prefix}{index}"
    record = run.history.get(position)
    if record is not None:
        return position, record.name if record.kind == _KIND else ""
    if run.reach.get(scope.prefix, 0) > index or f"{position}." in run.reach:
        return position, ""
    return position, None
