"""How one dashboard is configured: the store, and who may change workflows."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """A dashboard's configuration (what ``legato ui``'s options set).

    Example::

        Settings("legato.db", token="s3cret")      # writes need the token
        Settings("postgresql://app@db/prod", read_only=True)

    Args:
        store: the store URL, as ``legato.Runtime`` takes it.
        read_only: hide the signal, cancel and resume buttons and refuse writes.
        token: when set, every write must carry it (cookie, form field or
            ``Authorization: Bearer``); reads stay open.
        page_size: executions per page of the list.
        refresh: seconds between live refreshes of a page (0: off).
        allowed_hosts: the ``Host`` headers accepted (against DNS rebinding);
            empty accepts any.
    """

    store: str
    read_only: bool = False
    token: str | None = None
    page_size: int = 50
    refresh: float = 2.0
    allowed_hosts: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:  # never print the token
        token = "None" if self.token is None else "'***'"
        return (f"Settings({self.store!r}, read_only={self.read_only}, token={token}, "
                f"page_size={self.page_size})")
