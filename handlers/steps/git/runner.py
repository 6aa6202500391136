"""Running git on users' repositories without letting a repository or a URL run code here.

Every git process gets: no terminal prompts, no system or global config, a private HOME, only the
protocols the URL check allowed (``protocol.allow=never`` otherwise, which also shuts ``ext::``
and ``file://``), hooks pointed at an empty directory, no fsmonitor, submodules never followed,
a time limit and a bound on what it may print. Arguments are a list (no shell) and a ``--``
stands before positional ones, so nothing a user typed can become an option.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from steps.git.errors import GitFailed, GitTimedOut

MAX_OUTPUT_BYTES = 256 * 1024
AUTHOR = ("longrun", "longrun@users.noreply.longrun.dev")


@dataclass(frozen=True)
class Progress:
    phase: str  # "Counting objects", "Receiving objects", "Resolving deltas", …
    percent: int


_PROGRESS = re.compile(r"(?:remote: )?(?P<phase>[A-Z][A-Za-z ]+?):\s+(?P<percent>\d{1,3})%")


def parse_progress(chunk: str) -> Iterator[Progress]:
    """``git … --progress`` writes ``Receiving objects:  45% (450/1000)`` lines ended by CR or LF."""
    for line in re.split(r"[\r\n]", chunk):
        match = _PROGRESS.search(line)
        if match:
            yield Progress(match.group("phase").strip(), min(100, int(match.group("percent"))))


class Throttle:
    """Lets through at most ``per_second`` progress reports, plus every change of phase and 100%."""

    def __init__(self, per_second: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._last_at = float("-inf")
        self._last: Progress | None = None

    def admit(self, progress: Progress) -> bool:
        now = self.clock()
        changed_phase = self._last is None or self._last.phase != progress.phase
        if progress == self._last:
            return False
        if changed_phase or progress.percent == 100 or now - self._last_at >= self.interval:
            self._last, self._last_at = progress, now
            return True
        return False


def environment(home: Path, allow_http: bool = False, askpass: Path | None = None) -> dict[str, str]:
    """What git runs with: nothing of this process's environment but PATH and a locale."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "https:ssh" + (":http" if allow_http else ""),
        "GIT_AUTHOR_NAME": AUTHOR[0],
        "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_NAME": AUTHOR[0],
        "GIT_COMMITTER_EMAIL": AUTHOR[1],
    }
    # ssh trusts only the host keys the deployment lists (GitSshKnownHosts), never a new one.
    known_hosts = home / "known_hosts"
    known_hosts.write_text(os.environ.get("GIT_SSH_KNOWN_HOSTS", "").replace("\\n", "\n"))
    env["GIT_SSH_COMMAND"] = (
        f"ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts}"
    )
    if askpass is not None:
        env["GIT_ASKPASS"] = str(askpass)
    return env


def hardening(allow_http: bool = False, hooks_dir: Path | None = None) -> list[str]:
    """``-c`` settings that beat anything a repository's own config could say."""
    empty_hooks = hooks_dir or Path(tempfile.gettempdir()) / "longrun-no-hooks"
    empty_hooks.mkdir(exist_ok=True)
    settings = [
        "protocol.allow=never",
        "protocol.https.allow=always",
        "protocol.ssh.allow=always",
        f"protocol.http.allow={'always' if allow_http else 'never'}",
        f"core.hooksPath={empty_hooks}",
        "core.fsmonitor=false",
        "submodule.recurse=false",
        "transfer.fsckObjects=true",
        "credential.helper=",
        # A workspace belongs to its project's build user (workers/build); the steps run git in
        # it as another user, on a repository whose config they have just sanitized.
        "safe.directory=*",
    ]
    return [arg for setting in settings for arg in ("-c", setting)]


def run(
    args: list[str],
    cwd: Path,
    *,
    home: Path,
    timeout: float,
    allow_http: bool = False,
    askpass: Path | None = None,
    extra_env: dict[str, str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> str:
    """Run ``git <hardening> <args>``; its stdout, or ``GitFailed``/``GitTimedOut``.

    With ``on_progress``, stderr is read as it comes and progress lines are reported (throttle
    them with :class:`Throttle`); output past :data:`MAX_OUTPUT_BYTES` is dropped, not kept.
    """
    command = ["git", *hardening(allow_http), *args]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**environment(home, allow_http, askpass), **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        assert process.stdout is not None and process.stderr is not None
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        open_streams = 2
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.killpg(process.pid, 9)
                process.wait()
                raise GitTimedOut(f"git {args[0]} ran past {timeout:.0f} s and was stopped")
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                data = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                if not data:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                buffer: bytearray = key.data
                if len(buffer) < MAX_OUTPUT_BYTES:
                    buffer.extend(data[: MAX_OUTPUT_BYTES - len(buffer)])
                if buffer is err and on_progress is not None:
                    for progress in parse_progress(data.decode("utf-8", "replace")):
                        on_progress(progress)
    code = process.wait()
    if code != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise GitFailed(f"git {args[0]} failed: " + " / ".join(tail)[-2000:], out.decode("utf-8", "replace").strip())
    return out.decode("utf-8", "replace").strip()


# The keys a workspace's .git/config may keep. A build runs the user's code in the workspace and
# can write .git/config: filter and merge drivers, core.sshCommand, core.pager, include.path and
# the like would make the next git step run commands with the step's AWS credentials.
_SAFE_CONFIG_KEY = re.compile(
    r"^(core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase|precomposeunicode|symlinks)"
    r"|remote\.[^\n]+\.(url|fetch)|branch\.[^\n]+\.(remote|merge)|extensions\.objectformat)$",
    re.IGNORECASE,
)


def sanitize_config(repo: Path) -> list[str]:
    """Rewrite ``repo/.git/config`` with only the safe keys; the keys it dropped.

    The file is read as a plain config file (``git config --file``, which runs nothing) and written
    anew beside it, then renamed over it; a symlink in its place is replaced, never followed.
    """
    git_dir = repo / ".git"
    if git_dir.is_symlink() or not git_dir.is_dir():
        # A .git file ("gitdir: …") or symlink would point the step's git at another repository.
        raise GitFailed("the workspace's .git is not a directory")
    for pointer in ("commondir", "objects/info/alternates", "objects/info/http-alternates"):
        # Other repositories' refs and objects, read with the step's permissions: never kept.
        if (git_dir / pointer).is_symlink() or (git_dir / pointer).exists():
            (git_dir / pointer).unlink()
    config_file = git_dir / "config"
    if not config_file.is_file() or config_file.is_symlink():
        raise GitFailed("the workspace's .git/config is missing or not a regular file")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    listed = subprocess.run(
        ["git", "config", "--file", str(config_file), "--list", "--null"],
        capture_output=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        raise GitFailed("the workspace's .git/config cannot be read: " + listed.stderr.decode(errors="replace")[-500:])
    fresh = config_file.with_name(f"config.longrun-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    dropped = []
    for entry in listed.stdout.decode("utf-8", "replace").split("\0"):
        if not entry:
            continue
        key, _, value = entry.partition("\n")
        if not _SAFE_CONFIG_KEY.match(key):
            dropped.append(key)
            continue
        subprocess.run(["git", "config", "--file", str(fresh), "--add", key, value], env=env, timeout=30, check=True)
    if not fresh.exists():
        fresh.write_text("")
    os.replace(fresh, config_file)
    return dropped
