"""API Gateway's stage throttling: a token bucket of ``rate`` requests a second and ``burst`` depth."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, rate: float | None, burst: int | None) -> None:
        self.rate = float(rate) if rate else None
        self.capacity = float(burst if burst is not None else (rate or 0))
        self._tokens = self.capacity
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        if self.rate is None:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False
