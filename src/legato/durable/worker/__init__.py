"""The worker: claims, leases and their keeper thread, admission, news from the store."""

from __future__ import annotations

from ._bus import WakeBus
from ._lease_keeper import ANNOUNCE_EVERY, LeaseKeeper, read_store_clock
from ._news import SAFETY_POLL, NewsRelay
from ._worker import Worker, new_owner_id

__all__ = ["ANNOUNCE_EVERY", "SAFETY_POLL", "LeaseKeeper", "NewsRelay", "WakeBus", "Worker",
           "new_owner_id", "read_store_clock"]
