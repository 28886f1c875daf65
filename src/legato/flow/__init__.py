"""Orchestration primitives for asyncio, recorded when they run inside a durable workflow.

One kernel (``_kernel.Branches``) starts branches, waits for them, and cancels
and awaits the ones no longer needed; each primitive is a few dozen lines on
top. Outside a workflow they are plain asyncio (the only extra cost is one
``ContextVar.get``); inside one they record their decisions through
``_hooks.Recorder`` (``flow`` never imports ``durable``).

Lumen form → Python (Lumen counts milliseconds; legato durations are seconds,
``timedelta`` or strings like ``"1h30m"``)::

    await parallel for x in xs f(x) end      await parallel(f(x) for x in xs)        # list
    await parallel a = f() b = g() end       r = await parallel(a=f(), b=g())        # r.a, r.b
                                             a, b = await parallel(f(), g())         # tuple
    await race f() g() end                   await race(f(), g())      # first *success*
    race f() sleep(ms) |> fn(_) => null      await race(f(), sleep(seconds, result=None))
    await vote f() g() h() end               await vote(f(), g(), h(), key=..., quorum=...)
    await select a = ch.receive()            match await select(a=ch.receive(), timeout=5):
                 timeout = sleep(5000) end       case Selected("a", v): ...
    await timeout(5000, f())                 await timeout(5, f(), default=None)
    spawn(f())                               spawn(f())                # Future; await it
    spawn([f(), g()])                        spawn([f(), g()])         # one Future of a list
    await [spawn(a()), spawn(b())]           await parallel([fa, fb])  # or await spawn([fa, fb])
    match f.state Pending Completed(v) ...   match f.state: case Pending() | Completed(v)
                                                 | Failed(error) | Cancelled(): ...
    @deterministic true                      async with deterministic(): ...
                                             @workflow(deterministic=True)

Decisions worth knowing:

- ``parallel`` owns its branches: the first failure cancels the others, waits
  for them, and raises the failure of the earliest argument (the original
  exception; other failures are listed in a ``__notes__`` entry). Errors
  that branches raise while being cancelled never outrank the real one.
- ``race``/``vote`` raise :class:`~legato.AllFailed` (an ``ExceptionGroup``,
  argument order) when every branch failed.
- Only ``Exception`` counts as a branch failure: any other ``BaseException``
  (``KeyboardInterrupt``, the durable layer's ``Suspend``/``LeaseLost``)
  cancels the other branches and propagates, and no decision is recorded.
- ``Channel(maxsize=0)`` is unbounded, as ``asyncio.Queue``; a cancelled
  ``receive()`` takes no item, and an item a ``receive()`` branch took but a
  primitive drops is put back at the front.
- ``timeout(seconds)`` without an awaitable is an ``async with`` block that moves on
  at the deadline (``scope.expired``), plain asyncio only.
- Deterministic mode: ``deterministic()`` (``with`` or ``async with``), and
  ``_deterministic.enabled()`` to ask.
"""

from legato._errors import AllFailed as AllFailed
from legato._errors import ChannelClosed as ChannelClosed

from ._channel import Channel as Channel
from ._deterministic import deterministic as deterministic
from ._future import Cancelled as Cancelled
from ._future import Completed as Completed
from ._future import Failed as Failed
from ._future import Future as Future
from ._future import Pending as Pending
from ._parallel import Results as Results
from ._parallel import parallel as parallel
from ._race import race as race
from ._select import Selected as Selected
from ._select import select as select
from ._sleep import sleep as sleep
from ._spawn import spawn as spawn
from ._timeout import TimeoutScope as TimeoutScope
from ._timeout import timeout as timeout
from ._vote import vote as vote

__all__ = [
    "AllFailed",
    "Cancelled",
    "Channel",
    "ChannelClosed",
    "Completed",
    "Failed",
    "Future",
    "Pending",
    "Results",
    "Selected",
    "TimeoutScope",
    "deterministic",
    "parallel",
    "race",
    "select",
    "sleep",
    "spawn",
    "timeout",
    "vote",
]
