"""A small client of longrun's public contract: the REST API and the WebSocket API."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

DEFAULT_ENDPOINTS_FILE = Path(".longrun") / "endpoints.json"
# API Gateway's answers when it could not reach the function (throttled, failed, timed out): a call
# that is safe to repeat (a read, or a POST with an Idempotency-Key) is made again, with backoff.
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
RETRIES = 4


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('code', '')}: {error.get('message', body)}")
        self.status = status
        self.body = body
        self.code = error.get("code")


@dataclass
class Endpoints:
    api: str
    ws: str

    @classmethod
    def discover(cls, endpoints_file: Path | None = None) -> Endpoints:
        """``LONGRUN_API_URL``/``LONGRUN_WS_URL`` if set, else the local cloud's endpoints file."""
        api, ws = os.environ.get("LONGRUN_API_URL"), os.environ.get("LONGRUN_WS_URL")
        if api and ws:
            return cls(api.rstrip("/"), ws)
        path = endpoints_file or Path(os.environ.get("LONGRUN_ENDPOINTS_FILE", DEFAULT_ENDPOINTS_FILE))
        if not path.exists():
            raise SystemExit(
                "no longrun endpoints: set LONGRUN_API_URL and LONGRUN_WS_URL, "
                f"or start `longrun local up --endpoints-file {path}`"
            )
        data = json.loads(path.read_text())
        return cls(data["api"].rstrip("/"), data["ws"])


class Client:
    def __init__(self, endpoints: Endpoints, token: str, timeout: float = 30) -> None:
        self.endpoints = endpoints
        self.token = token
        self.http = httpx.Client(base_url=endpoints.api, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        self.reconnections = 0  # WebSocket connections of watch() that went away and were made again
        self.retried_calls = 0  # calls made again after a 5xx (see RETRIED_STATUSES)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        repeatable = method in ("GET", "HEAD") or "Idempotency-Key" in (kwargs.get("headers") or {})
        for attempt in range(RETRIES + 1):
            response = self.http.request(method, path, **kwargs)
            if not (repeatable and response.status_code in RETRIED_STATUSES and attempt < RETRIES):
                break
            self.retried_calls += 1
            time.sleep(0.2 * 2**attempt)
        body = response.json() if response.content else None
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def start_job(
        self, job_type: str, params: dict[str, Any], project_id: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"type": job_type, "params": params}
        if project_id:
            body["projectId"] = project_id
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/jobs", json=body, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{quote(job_id, safe='')}")

    def jobs(self, **query: Any) -> dict[str, Any]:
        return self._call("GET", "/jobs", params={k: v for k, v in query.items() if v is not None})

    def events(self, job_id: str, after: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/jobs/{quote(job_id, safe='')}/events", params={"after": after})["items"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/jobs/{quote(job_id, safe='')}")

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{quote(job_id, safe='')}/retry")

    def project(self, project_id: str) -> dict[str, Any]:
        return self._call("GET", f"/projects/{quote(project_id, safe='')}")

    def projects(self, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the caller's projects, newest first: ``{"items", "nextCursor"}``."""
        query = {"limit": limit, "cursor": cursor}
        return self._call("GET", "/projects", params={k: v for k, v in query.items() if v is not None})

    def delete_project(self, project_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """Start the project's ``delete-project`` job (``DELETE /projects/{projectId}``): the accepted job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("DELETE", f"/projects/{quote(project_id, safe='')}", headers=headers)

    def create_download(self, project_id: str, path: str) -> dict[str, Any]:
        """A pre-signed GET for one file of the project as S3 holds it (``url``, ``size``, ``expiresAt``…)."""
        return self._call("POST", f"/projects/{quote(project_id, safe='')}/downloads", json={"path": path})

    def create_upload(
        self, project_id: str, path: str, content_type: str | None = None, size: int | None = None
    ) -> dict[str, Any]:
        """A pre-signed PUT for one file of the project (``url``, ``method``, ``headers``, ``expiresAt``)."""
        body: dict[str, Any] = {"path": path}
        if content_type is not None:
            body["contentType"] = content_type
        if size is not None:
            body["size"] = size
        return self._call("POST", f"/projects/{quote(project_id, safe='')}/uploads", json=body)

    @contextmanager
    def websocket(self) -> Iterator[ClientConnection]:
        separator = "&" if "?" in self.endpoints.ws else "?"
        with connect(f"{self.endpoints.ws}{separator}token={quote(self.token)}", open_timeout=10) as ws:
            yield ws

    def watch(self, job_id: str, timeout: float = 600) -> Iterator[dict[str, Any]]:
        """Every event of the job, in ``seq`` order, ending with ``job.finished``.

        Subscribes over the WebSocket, then fills any gap (events published before the
        subscription took hold) from ``GET /jobs/{jobId}/events``: nothing is missed or repeated.
        A connection that goes away (the server may drop it at any time) is made again, the job
        subscribed to again and the gap filled the same way.
        """
        deadline = time.monotonic() + timeout
        subscribe = json.dumps({"action": "subscribe", "jobId": job_id})
        seen = 0
        pending: dict[int, dict[str, Any]] = {}
        while True:
            try:
                with self.websocket() as ws:
                    ws.send(subscribe)
                    while time.monotonic() < deadline:
                        try:
                            message = json.loads(ws.recv(timeout=1.0))
                        except TimeoutError:
                            message = None
                        if message is not None:
                            if message.get("type") == "error":
                                raise ApiError(404 if message["error"]["code"] == "NotFound" else 400, message)
                            if "type" not in message and "message" in message:  # API Gateway could not route it
                                ws.send(subscribe)
                            if message.get("jobId") == job_id and message.get("seq", 0) > seen:
                                pending[message["seq"]] = message
                        if (pending and min(pending) > seen + 1) or message is None:
                            for event in self.events(job_id, after=seen):
                                pending.setdefault(event["seq"], event)
                        while seen + 1 in pending:
                            seen += 1
                            event = pending.pop(seen)
                            yield event
                            if event["type"] == "job.finished":
                                return
                    raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s")
            except (WebSocketException, ConnectionError):  # gone, or refused while connecting: again
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s") from None
                self.reconnections += 1
                time.sleep(min(1.0, 0.1 * self.reconnections))
