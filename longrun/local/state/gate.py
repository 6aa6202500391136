"""A readers/writer gate per service: requests pass together, a snapshot passes alone, and briefly.

A snapshot must see a service between requests (a TransactWriteItems half applied would be saved
half applied), so requests that change it hold the gate shared and the snapshot holds it
exclusively. The writer is preferred (new requests wait while it waits, so a busy service still gets
saved) but never waits long: if requests in flight do not drain within ``timeout`` (a request that
itself waits for another one, say), the snapshot gives up this round and the requests go on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writer_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writer_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    def acquire_exclusive(self, timeout: float) -> bool:
        """True once no request is in flight (new ones then wait for :meth:`release_exclusive`); else False."""
        with self._cond:
            self._writer_waiting += 1
            try:
                if not self._cond.wait_for(lambda: not self._readers and not self._writer, timeout):
                    return False
                self._writer = True
                return True
            finally:
                self._writer_waiting -= 1
                self._cond.notify_all()

    def release_exclusive(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()
