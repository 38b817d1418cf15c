"""A small in-process cache with a time-to-live, used for queue statistics.

Counting a queue's jobs reads many rows; a dashboard polling every second from many tabs would repeat that
work. Statistics are cached per (tenant scope, queue) for `JOBKEEPER_API_STATS_CACHE_TTL` seconds (default
2). Each API process has its own cache: `DELETE /cache/flush` empties the cache of the process that answers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 10_000


class TtlCache(Generic[V]):
    def __init__(self, name: str, ttl_seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.name = name
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        found = self._entries.get(key)
        if found is not None and found[0] > time.monotonic():
            self.hits += 1
            return found[1]
        if found is not None:
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: V) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def flush(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    def __len__(self) -> int:
        now = time.monotonic()
        return sum(1 for expires, _ in self._entries.values() if expires > now)
