"""A git server for tests: ``git http-backend`` (smart HTTP) behind a small threaded HTTP server on 127.0.0.1.

It serves every bare repository under ``root``; ``private`` names repositories that need HTTP
basic authentication with the given user and password, as a hosting service would. Pushes
(``git-receive-pack``) are served too, with the same authentication, except to the repositories
named in ``read_only`` (a fetch-only mirror): git http-backend's ``http.receivepack`` is set per
repository (https://git-scm.com/docs/git-http-backend), and ``REMOTE_USER`` is the authenticated
user, unset for anonymous requests, as a web server passes it.
"""

from __future__ import annotations

import base64
import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


class GitServer:
    def __init__(
        self,
        root: Path,
        private: dict[str, tuple[str, str]] | None = None,
        delay: dict[str, float] | None = None,
        read_only: set[str] | None = None,
    ) -> None:
        self.root = root
        self.private = private or {}
        self.read_only = read_only or set()  # repositories that refuse pushes (403)
        self.delay = delay or {}  # repository → seconds each request waits (a slow server)
        self.down: set[str] = set()  # repositories answering 503 Service Unavailable (an outage)
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _authorized(self, request: http.server.BaseHTTPRequestHandler, repo: str) -> bool:
        if repo not in self.private:
            return True
        user, password = self.private[repo]
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return request.headers.get("Authorization") == expected

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        self.requests.append(f"{request.command} {parts.path}")
        repo = parts.path.lstrip("/").split("/", 1)[0]
        if repo in self.delay:
            time.sleep(self.delay[repo])
        if repo in self.down:
            request.send_response(503)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        if not self._authorized(request, repo):
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="git"')
            request.end_headers()
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.root),
            # http-backend refuses receive-pack with 403 when http.receivepack is false.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "false" if repo in self.read_only else "true",
        }
        if repo in self.private:
            env["REMOTE_USER"] = self.private[repo][0]
        if request.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            if not line:
                continue
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((name, value.strip()))
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


def rev_parse(bare: Path, ref: str) -> str | None:
    """What ``ref`` names in the server's bare repository (None if nothing): the origin's own view."""
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "--verify", "--quiet", ref],
        capture_output=True, text=True, check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )  # fmt: skip
    return done.stdout.strip() or None


def make_repository(
    root: Path, name: str, files: dict[str, str], branches: tuple[str, ...] = (), tags: tuple[str, ...] = ()
) -> Path:
    """A bare repository ``root/name`` with one commit of ``files`` on main, and the given branches and tags."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    work = root / f".work-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, env=env, check=True)
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=work, env=env, check=True)
    for branch in branches:
        subprocess.run(["git", "branch", branch], cwd=work, env=env, check=True)
    for tag in tags:
        subprocess.run(["git", "tag", "-a", "-m", tag, tag], cwd=work, env=env, check=True)
    bare = root / name
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], cwd=root, env=env, check=True)
    shutil.rmtree(work)
    return bare
