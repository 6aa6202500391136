"""The snapshot loop inside a moto process: each owned service saved when it changed, and once more at exit.

``aws_server --state-dir DIR --state-services a,b`` makes one :class:`Keeper`. It

* wraps moto's WSGI app: a request to an owned service that may change it holds that service's
  :class:`~longrun.local.state.gate.Gate` shared and marks the service dirty when it is answered;
  reads (``Get*``, ``Describe*``, ``List*``, ``Query``, ``Scan``, S3 ``GET``/``HEAD``) pass ungated,
  and long polls (SQS ``ReceiveMessage``, ``GetActivityTask``) pass ungated too, since holding a
  gate for 20 s would stall the snapshot, and mark dirty when they end;
* every :data:`INTERVAL` seconds saves each service that is dirty or whose adapter says ``busy()``:
  its gate held exclusively only while the adapter dumps and the data is pickled (the pause), then
  written atomically (:func:`~longrun.local.state.files.write_atomic`) outside the gate;
* saves nothing until :meth:`restore` ran (``POST /_longrun/state/restore``, once the stack exists):
  before it, the process holds an empty stack whose save would overwrite the data dir's;
* saves every owned service at a clean stop (:meth:`final_save`).

Two things keep the saving from costing the service it saves (measured under the 200-job
throughput benchmark, before them: DynamoDB paused 300 ms and Step Functions 2.3 s in every second):

* **pacing**: after a save that cost ``c`` seconds (the pause, or a child's whole run), the service
  is not saved again for ``PACE * c`` seconds, so saving takes at most ``1 / (PACE + 1)`` of its
  time however large the data grows; while saves stay under ``INTERVAL / PACE`` it changes nothing;
* **a snapshot in a child**: an adapter with ``SNAPSHOT_IN_CHILD = True`` (DynamoDB, whose items are
  the bulk of the data and change everywhere) is saved as Redis's ``BGSAVE`` does: under the gate the
  process forks (a few milliseconds: copy-on-write pages), the requests resume at once, and the
  child pickles the frozen copy, writes it atomically and exits. Only adapters whose ``dump`` takes
  no lock another thread may hold declare it (a forked child has only the forking thread).

The crash bound follows: a write answered at ``t`` is on disk by ``t + INTERVAL + one save``, or
by ``t + PACE * c + one save`` once saves cost more than ``INTERVAL / PACE``
(:data:`CRASH_BOUND_SECONDS` states the first; tests/e2e/test_restart.py SIGKILLs after it).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from longrun.local import usage
from longrun.local.state import files, registry
from longrun.local.state.gate import Gate

log = logging.getLogger("longrun.local.state")

INTERVAL = 1.0
# Interval + a save's pause and write, with margin for a loaded machine (a 1 MiB-object bucket of
# 200 saves in well under a second once its blobs exist, docs/local-cloud.md#keeping-data-across-restarts).
CRASH_BOUND_SECONDS = 2.0
PATH_PREFIX = "/_longrun/state"
# How long a snapshot waits for a service's requests in flight before it tries again next round.
_DRAIN_SECONDS = 0.5
_FINAL_DRAIN_SECONDS = 5.0
# A save that cost c seconds is followed by none for PACE * c: saving takes at most 1/(PACE+1) of the time.
PACE = 4.0
# A snapshot child that has not finished in this long is killed (and the service saved next round).
_CHILD_SECONDS = 120.0
_READS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "TransactGet", "Filter", "Head")
_LONG_POLLS = frozenset({"ReceiveMessage", "GetActivityTask"})


def _request_kind(service: str, operation: str, method: str) -> str:
    """A "read" (changes nothing), a "poll" (long: ungated, may change state) or a "write"."""
    if operation in _LONG_POLLS:
        return "poll"
    if service == "s3":
        return "read" if method in ("GET", "HEAD") else "write"
    return "read" if operation.startswith(_READS) else "write"


class Keeper:
    def __init__(self, state_dir: Path, services: list[str], interval: float = INTERVAL) -> None:
        self.state_dir = state_dir
        self.interval = interval
        self.adapters: dict[str, ModuleType] = registry.load(services)
        self.gates = {service: Gate() for service in self.adapters}
        self._dirty = dict.fromkeys(self.adapters, False)
        self._not_before = dict.fromkeys(self.adapters, 0.0)  # monotonic: the pacing (see the module doc)
        self.saves = dict.fromkeys(self.adapters, 0)  # how many snapshots each service had written
        self._save_lock = threading.Lock()
        self._stopped = threading.Event()
        self.armed = False
        self.stats: dict[str, dict[str, float]] = {}
        files.configure_blobs(state_dir / "blobs")
        self._thread = threading.Thread(target=self._run, name="state-keeper", daemon=True)
        self._thread.start()

    # --- requests ---------------------------------------------------------------------------------

    def wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """moto's WSGI app, with each request to an owned service gated and noted (see the module doc)."""

        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            signed, operation = usage.classify(environ)
            service = registry.SIGNING_NAMES.get(signed, signed)
            if signed == "unsigned":  # nothing says which service: any owned one may have changed
                body = list(app(environ, start_response))
                self._mark(*self.adapters)
                return body
            if service not in self.adapters:
                return app(environ, start_response)
            kind = _request_kind(service, operation, environ.get("REQUEST_METHOD", "GET"))
            if kind == "read":
                return app(environ, start_response)
            if kind == "poll":
                body = list(app(environ, start_response))
                self._mark(service)
                return body
            with self.gates[service].shared():
                body = list(app(environ, start_response))  # answered whole inside the gate
                self._mark(service)
            return body

        return gated

    def _mark(self, *services: str) -> None:
        for service in services:
            if service in self._dirty:
                self._dirty[service] = True

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """``POST /_longrun/state/restore``, ``POST /_longrun/state/save`` (all owned, now), ``GET /_longrun/state``."""
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        try:
            if path == f"{PATH_PREFIX}/restore" and method == "POST":
                body: dict[str, Any] = {"restored": self.restore()}
            elif path == f"{PATH_PREFIX}/save" and method == "POST":
                body = {"saved": self.save_all(force=True)}
            elif path == PATH_PREFIX and method == "GET":
                body = {"armed": self.armed, "services": list(self.adapters), "stats": self.stats}
            else:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"no {method} {path}"}).encode()]
        except Exception as e:  # the caller (cloud.py) stops the start with this message
            log.exception("state: %s %s failed", method, path)
            start_response("500 Internal Server Error", [("Content-Type", "application/json")])
            return [json.dumps({"message": f"{type(e).__name__}: {e}"}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    # --- restore ----------------------------------------------------------------------------------

    def _path(self, service: str) -> Path:
        return self.state_dir / f"{service}.pickle"

    def restore(self) -> dict[str, bool]:
        """Each owned service's saved data into the stack just created; then (only then) saving begins."""
        restored = {}
        for service, adapter in self.adapters.items():
            path = self._path(service)
            restored[service] = path.exists()
            if not path.exists():
                continue
            data = pickle.loads(path.read_bytes())
            gate = self.gates[service]
            if not gate.acquire_exclusive(_FINAL_DRAIN_SECONDS):
                raise RuntimeError(f"{service}: requests did not drain for the restore")
            try:
                adapter.restore(data)
            finally:
                gate.release_exclusive()
        for service in self._dirty:  # what the stack's creation wrote is the template's, not data
            self._dirty[service] = False
        self.armed = True
        log.info("state: restored %s", ", ".join(s for s, done in restored.items() if done) or "nothing (empty)")
        return restored

    # --- save -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.armed:
                self.save_all(force=False)

    def _wants_save(self, service: str) -> bool:
        if time.monotonic() < self._not_before[service]:
            return False
        busy = getattr(self.adapters[service], "busy", None)
        try:
            return self._dirty[service] or bool(busy and busy())
        except Exception:
            log.exception("state: %s busy() failed", service)
            return True

    def save_all(self, force: bool, drain: float = _DRAIN_SECONDS) -> dict[str, bool]:
        if not self.armed:
            return {}
        with self._save_lock:
            return {
                service: self._save(service, drain) for service in self.adapters if force or self._wants_save(service)
            }

    def _save(self, service: str, drain: float) -> bool:
        adapter, gate = self.adapters[service], self.gates[service]
        started = time.perf_counter()
        if not gate.acquire_exclusive(drain):
            log.info("state: %s busy for %.1fs; saved next round", service, drain)
            return False
        if getattr(adapter, "SNAPSHOT_IN_CHILD", False) and not self._stopped.is_set():
            return self._save_in_child(service, started)  # releases the gate once forked
        try:
            self._dirty[service] = False
            data = adapter.dump()
            payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            self._dirty[service] = True
            log.exception("state: dumping %s failed; tried again next round", service)
            return False
        finally:
            gate.release_exclusive()
        paused = time.perf_counter()
        files.write_atomic(self._path(service), payload)
        saved = getattr(adapter, "saved", None)
        if saved is not None:
            saved(data)
        done = time.perf_counter()
        self._paced(service, paused - started, done - started, len(payload))
        return True

    def _paced(self, service: str, pause: float, cost: float, size: int) -> None:
        self._not_before[service] = time.monotonic() + PACE * cost
        self.saves[service] += 1
        self.stats[service] = {
            "pause_ms": round(pause * 1000, 2),
            "save_ms": round(cost * 1000, 2),
            "bytes": size,
            "at": time.time(),
        }

    def _save_in_child(self, service: str, started: float) -> bool:
        """Fork under the (held) gate, release it, and let the child pickle and write the frozen copy."""
        adapter, gate = self.adapters[service], self.gates[service]
        path = self._path(service)
        try:
            self._dirty[service] = False
            pid = os.fork()
        except OSError:
            self._dirty[service] = True
            gate.release_exclusive()
            log.exception("state: could not fork to save %s; tried again next round", service)
            return False
        if pid == 0:  # the child: this thread only, nothing but the snapshot, and never back into the server
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                files.write_atomic(path, pickle.dumps(adapter.dump(), protocol=pickle.HIGHEST_PROTOCOL))
                code = 0
            finally:
                os._exit(code)
        gate.release_exclusive()
        paused = time.perf_counter()
        deadline = time.monotonic() + _CHILD_SECONDS
        status = None
        while status is None:
            done_pid, raw = os.waitpid(pid, os.WNOHANG)
            if done_pid:
                status = os.waitstatus_to_exitcode(raw)
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            else:
                time.sleep(0.01)
        if status != 0:
            self._dirty[service] = True
            log.error("state: the child saving %s ended with %s; tried again next round", service, status)
            return False
        self._paced(service, paused - started, time.perf_counter() - started, path.stat().st_size)
        return True

    def final_save(self) -> None:
        """At a clean stop: every owned service, whatever its state (requests have stopped by then)."""
        self._stopped.set()
        if not self.armed:
            return
        result = self.save_all(force=True, drain=_FINAL_DRAIN_SECONDS)
        for service, ok in result.items():
            if not ok:
                log.error("state: %s could not be saved at stop; its last snapshot stands", service)
        log.info("state: saved %s at stop", ", ".join(s for s, ok in result.items() if ok))
