"""A threaded HTTP/1.1 server with keep-alive, shared by the local cloud's HTTP fronts."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "longrun-local"
    # Our answers go out at once (TCP_NODELAY), and see body() for the other direction.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not logged line by line; the fronts log what matters

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            # Many clients send a request's headers and body in two writes; with Nagle's algorithm
            # on their side and delayed ACKs on ours, the body then waits ~40 ms on a kept-alive
            # connection. Acknowledging the headers at once lets it come.
            with contextlib.suppress(OSError, AttributeError):
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes | str | dict | list, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, dict | list):
            body = json.dumps(body, separators=(",", ":"))
            headers = {"Content-Type": "application/json", **(headers or {})}
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Service:
    """One HTTP endpoint of the local cloud, served from a thread of this process."""

    name = "http"

    def __init__(self, host: str, port: int, handler: type[Handler]) -> None:
        self.server = Server((host, port), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._serving = False

    def start(self) -> None:
        self._serving = True
        threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True).start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever() to end: forever if it never ran (a start that failed early).
        if self._serving:
            self.server.shutdown()
        self.server.server_close()
