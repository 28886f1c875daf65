"""A run that ends by starting its workflow afresh (``legato.continue_as_new``)."""

from __future__ import annotations

__all__ = ["ContinueAsNew"]


class ContinueAsNew(BaseException):
    """Raised by ``legato.continue_as_new``: end this run, start the next with ``input``.

    A ``BaseException``, so ``except Exception`` in workflow code lets it pass;
    ``finally`` blocks run as it goes.
    """

    def __init__(self, input: bytes) -> None:
        super().__init__("the workflow continues as a new run")
        self.input = input
