"""The worker: claims, leases and their keeper thread, admission, news from the store,
schedules."""

from __future__ import annotations

from ._bus import WakeBus
from ._lease_keeper import ANNOUNCE_EVERY, LeaseKeeper, read_store_clock
from ._news import SAFETY_POLL, NewsRelay
from ._scheduler import CATCH_UPS, LATE, OVERLAPS, Scheduler
from ._worker import Worker, new_owner_id

__all__ = ["ANNOUNCE_EVERY", "CATCH_UPS", "LATE", "OVERLAPS", "SAFETY_POLL", "LeaseKeeper",
           "NewsRelay", "Scheduler", "WakeBus", "Worker", "new_owner_id", "read_store_clock"]
