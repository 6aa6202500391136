"""The web console's static files (``console/``) as the local cloud serves and uploads them.

The console is plain files: ``index.html``, ``app.js``, ``style.css``. A deployed stage serves them
from the projects bucket (under ``static/console/``) through the REST API's ``/static/{proxy+}``
route, with ``config.json`` beside them naming the WebSocket URL (``make console-upload`` writes
it). The local cloud does the same: it uploads the files to its bucket at start for that route,
and also serves them straight from disk at ``{api}/console/`` so an edit shows on reload, answering
``/console/config.json`` itself.

Both answers carry the same headers as the template gives the ``/static/`` route: ``Cache-Control:
no-cache`` (a new upload is seen at once) and a Content-Security-Policy that lets the page load
nothing but its own files and talk to nothing but its API and its WebSocket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"
# Where the console lives under the /static/ route: {api}/static/console/index.html
STATIC_PREFIX = "console/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def content_security_policy(websocket_url: str) -> str:
    """The console's policy: its own scripts, styles and API; the WebSocket; no frames, no forms elsewhere.

    infra/template.yaml gives the ``/static/`` route the same policy (tests/infra checks that).
    """
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {websocket_url}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def headers(content_type: str, websocket_url: str) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": content_security_policy(websocket_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def config(websocket_url: str) -> bytes:
    """``config.json``: what the page cannot work out from its own address."""
    return (json.dumps({"ws": websocket_url}) + "\n").encode()


class ConsoleFiles:
    """The files under ``root``, answered by path with their headers; nothing outside it, ever."""

    def __init__(self, websocket_url: str, root: Path = CONSOLE_DIR) -> None:
        self.root = root.resolve()
        self.websocket_url = websocket_url

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """``(status, body, headers)`` for a request path (``/console``, ``/console/app.js`` …)."""
        if path == "/console":
            # Relative URLs in index.html (style.css, app.js, config.json) need the trailing slash.
            return 301, b"", {"Location": "/console/", "Cache-Control": "no-cache"}
        name = path.removeprefix("/console/") or "index.html"
        if name == "config.json":
            return 200, config(self.websocket_url), headers("application/json", self.websocket_url)
        file = self._file(name)
        if file is None:
            body = json.dumps({"error": {"code": "NotFound", "message": "No such file"}}).encode()
            return 404, body, headers("application/json", self.websocket_url)
        content_type = CONTENT_TYPES[file.suffix.lower()]
        return 200, file.read_bytes(), headers(content_type, self.websocket_url)

    def _file(self, name: str) -> Path | None:
        """The file a URL path names, or None: no dot segments, hidden files, odd bytes or links out."""
        try:
            name = unquote(name, errors="strict")
        except UnicodeDecodeError:
            return None
        parts = name.split("/")
        if (
            "\\" in name
            or "\x00" in name
            or any(not part or part.startswith(".") or not part.isprintable() for part in parts)
        ):
            return None
        candidate = (self.root / name).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        if candidate.suffix.lower() not in CONTENT_TYPES:
            return None
        return candidate

    def uploads(self) -> Iterator[tuple[str, bytes, str]]:
        """``(relative name, body, content type)`` of every file a deployment uploads, config.json included."""
        for file in sorted(self.root.rglob("*")):
            relative = file.relative_to(self.root).as_posix()
            if relative != "config.json" and self._file(relative) == file.resolve():
                yield relative, file.read_bytes(), CONTENT_TYPES[file.suffix.lower()]
        yield "config.json", config(self.websocket_url), "application/json"

    def upload(self, s3: Any, bucket: str, key_prefix: str) -> int:
        """Put the files under ``key_prefix`` as ``make console-upload`` does on AWS; how many."""
        count = 0
        for name, body, content_type in self.uploads():
            s3.put_object(Bucket=bucket, Key=key_prefix + name, Body=body, ContentType=content_type,
                          CacheControl="no-cache")  # fmt: skip
            count += 1
        return count
