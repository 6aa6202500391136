"""The hardened git runner: what a URL or a repository could make git do, it does not."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from steps.git.runner import GitFailed, GitTimedOut, Progress, Throttle, parse_progress, run, sanitize_config

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _plain_git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1",
                        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})  # fmt: skip


@pytest.fixture
def served_repo(tmp_path):
    """A bare repository served over git's dumb HTTP protocol on 127.0.0.1."""
    work = tmp_path / "work"
    work.mkdir()
    _plain_git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("hello\n")
    _plain_git("add", ".", cwd=work)
    _plain_git("commit", "-q", "-m", "first", cwd=work)
    root = tmp_path / "served"
    root.mkdir()
    _plain_git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=tmp_path)
    _plain_git("update-server-info", cwd=root / "repo.git")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/repo.git"
    server.shutdown()


def test_clone_over_http_of_an_allowed_host(served_repo, tmp_path):
    run(["clone", "--", served_repo, "copy"], tmp_path, home=tmp_path, timeout=30, allow_http=True)
    assert (tmp_path / "copy" / "README.md").read_text() == "hello\n"


def test_http_is_refused_unless_allowed(served_repo, tmp_path):
    with pytest.raises(GitFailed):
        run(["clone", "--", served_repo, "copy"], tmp_path, home=tmp_path, timeout=30)
    assert not (tmp_path / "copy").exists()


@pytest.mark.parametrize("url", ["ext::sh -c touch% {canary}", "file://{root}", "{root}"])
def test_dangerous_transports_are_refused_by_git_itself(tmp_path, url):
    """Defence in depth: even a URL that slipped past the checks cannot run a command or read files."""
    canary = tmp_path / "canary"
    repo = tmp_path / "local"
    repo.mkdir()
    _plain_git("init", "-q", cwd=repo)
    with pytest.raises(GitFailed):
        run(["ls-remote", "--", url.format(canary=canary, root=repo)], tmp_path, home=tmp_path, timeout=30)
    assert not canary.exists()


def test_a_repositorys_hooks_do_not_run(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _plain_git("init", "-q", "-b", "main", cwd=repo)
    canary = tmp_path / "canary"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {canary}\n")
    hook.chmod(0o755)
    (repo / "f").write_text("x")
    run(["add", "--", "f"], repo, home=tmp_path, timeout=30)
    run(["commit", "-q", "-m", "c"], repo, home=tmp_path, timeout=30)
    assert not canary.exists()


def test_a_git_that_hangs_is_stopped(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        with pytest.raises(GitTimedOut):
            run(["ls-remote", "--", f"http://127.0.0.1:{silent.getsockname()[1]}/x.git"], tmp_path,
                home=tmp_path, timeout=1.5, allow_http=True)  # fmt: skip
    finally:
        silent.close()


def test_progress_lines_are_parsed():
    chunk = (
        "Cloning into 'x'...\nremote: Counting objects:  50% (5/10)\rremote: Counting objects: 100% (10/10), done.\n"
    )
    chunk += "Receiving objects:  45% (450/1000), 1.2 MiB | 2 MiB/s\rResolving deltas:   7% (7/100)\r"
    assert list(parse_progress(chunk)) == [
        Progress("Counting objects", 50),
        Progress("Counting objects", 100),
        Progress("Receiving objects", 45),
        Progress("Resolving deltas", 7),
    ]


def test_progress_is_throttled_but_keeps_phase_changes_and_the_end():
    now = [0.0]
    throttle = Throttle(per_second=2, clock=lambda: now[0])
    admitted = []
    for i in range(101):
        now[0] = i * 0.01  # a report every 10 ms for a second
        progress = Progress("Receiving objects", i)
        if throttle.admit(progress):
            admitted.append(progress.percent)
    assert admitted[0] == 0 and admitted[-1] == 100
    assert len(admitted) <= 4, admitted
    assert throttle.admit(Progress("Resolving deltas", 1))


@pytest.fixture
def git_server(tmp_path):
    from tests.support.git_server import GitServer, make_repository

    root = tmp_path / "srv"
    root.mkdir()
    make_repository(root, "public.git", {"README.md": "public\n"}, branches=("develop",))
    make_repository(root, "private.git", {"README.md": "private\n"})
    server = GitServer(root, private={"private.git": ("alice", "correct horse")})
    yield server
    server.stop()


def test_smart_http_shallow_clone_with_progress(git_server, tmp_path):
    seen: list[Progress] = []
    run(["clone", "--progress", "--depth", "1", "--branch", "develop", "--", f"{git_server.url}/public.git", "c"],
        tmp_path, home=tmp_path, timeout=30, allow_http=True, on_progress=seen.append)  # fmt: skip
    assert (tmp_path / "c" / "README.md").read_text() == "public\n"
    assert run(["rev-parse", "--is-shallow-repository"], tmp_path / "c", home=tmp_path, timeout=10) == "true"
    assert Progress("Receiving objects", 100) in seen, seen


def test_private_repository_needs_its_credentials_which_come_through_askpass(git_server, tmp_path):
    url = f"{git_server.url}/private.git"
    with pytest.raises(GitFailed):
        run(["clone", "--", url, "denied"], tmp_path, home=tmp_path, timeout=30, allow_http=True)
    askpass = tmp_path / "askpass.sh"
    askpass.write_text('#!/bin/sh\ncase "$1" in Username*) echo alice;; *) echo "correct horse";; esac\n')
    askpass.chmod(0o700)
    run(["clone", "--", url, "granted"], tmp_path, home=tmp_path, timeout=30, allow_http=True, askpass=askpass)
    assert (tmp_path / "granted" / "README.md").read_text() == "private\n"
    remote = run(["remote", "get-url", "origin"], tmp_path / "granted", home=tmp_path, timeout=10)
    assert "correct horse" not in remote and "alice" not in remote, "no credential is left in the repository"


# --- a workspace that a build has written: its .git is the user's code's to change ------------------


def _repo_with_a_change(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    repo = tmp_path / "ws"
    _plain_git("init", "-q", "-b", "main", str(repo), cwd=tmp_path)
    (repo / "a.txt").write_text("one\n")
    _plain_git("add", "a.txt", cwd=repo)
    _plain_git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one", cwd=repo)
    (repo / "a.txt").write_text("two\n")  # a change that git status runs the clean filter on
    (repo / ".gitattributes").write_text("*.txt filter=evil merge=evil diff=evil\n")
    return repo


def test_sanitized_config_runs_none_of_a_builds_filters_drivers_or_commands(tmp_path):
    repo = _repo_with_a_change(tmp_path)
    canary = tmp_path / "canary"
    with (repo / ".git" / "config").open("a") as config:
        config.write(
            f'[filter "evil"]\n\tclean = touch {canary}-clean; cat\n\tsmudge = touch {canary}-smudge; cat\n'
            f'[merge "evil"]\n\tdriver = touch {canary}-merge\n[diff "evil"]\n\tcommand = touch {canary}-diff\n'
            f"[core]\n\tsshCommand = touch {canary}-ssh\n\tpager = touch {canary}-pager\n"
            f"\tfsmonitor = touch {canary}-fsm\n"
            f"[include]\n\tpath = {tmp_path}/more.cfg\n[remote \"origin\"]\n\turl = https://example.com/r.git\n"
        )  # fmt: skip
    # Without the sanitizing, the step's own git status would run the clean filter.
    run(["status", "--porcelain"], repo, home=tmp_path, timeout=30)
    assert (tmp_path / "canary-clean").exists(), "the test's filter must be live before sanitizing"
    (tmp_path / "canary-clean").unlink()

    dropped = sanitize_config(repo)
    assert {"filter.evil.clean", "merge.evil.driver", "core.sshcommand", "core.pager", "include.path"} <= set(dropped)
    run(["status", "--porcelain"], repo, home=tmp_path, timeout=30)
    run(["diff"], repo, home=tmp_path, timeout=30)
    assert not list(tmp_path.glob("canary*")), "a command from the workspace's config ran"
    kept = subprocess.run(["git", "config", "--file", str(repo / ".git" / "config"), "--list"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "remote.origin.url=https://example.com/r.git" in kept and "core.repositoryformatversion=0" in kept


@pytest.mark.parametrize("kind", ["gitdir-file", "symlink"])
def test_a_git_pointer_to_another_repository_is_refused(tmp_path, kind):
    other = _repo_with_a_change(tmp_path / "other")
    repo = tmp_path / "ws"
    repo.mkdir()
    if kind == "gitdir-file":
        (repo / ".git").write_text(f"gitdir: {other / '.git'}\n")
    else:
        (repo / ".git").symlink_to(other / ".git")
    with pytest.raises(GitFailed):
        sanitize_config(repo)


def test_alternates_and_commondir_are_removed(tmp_path):
    repo = _repo_with_a_change(tmp_path)
    other = _repo_with_a_change(tmp_path / "other")
    (repo / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (repo / ".git" / "objects" / "info" / "alternates").write_text(str(other / ".git" / "objects") + "\n")
    (repo / ".git" / "commondir").write_text(str(other / ".git") + "\n")
    sanitize_config(repo)
    assert not (repo / ".git" / "objects" / "info" / "alternates").exists()
    assert not (repo / ".git" / "commondir").exists()
