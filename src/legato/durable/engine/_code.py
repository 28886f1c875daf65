"""What the engine needs of a workflow's code (``@legato.workflow`` makes one)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..._serde import Serializer

__all__ = ["WorkflowCode"]


class WorkflowCode(Protocol):
    """A workflow function and its options, as the engine and worker run it."""

    @property
    def name(self) -> str: ...
    @property
    def fn(self) -> Callable[..., Awaitable[Any]]: ...
    @property
    def deterministic(self) -> bool: ...
    @property
    def timeout(self) -> float | None: ...

    def encode_input(self, serializer: Serializer, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> bytes: ...
