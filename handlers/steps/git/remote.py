"""Reaching a workspace's origin to push: the URL checked again, its host resolved, no force ever.

git-push and git-merge's ``push`` share this. The origin is the workspace's ``origin`` remote, held
to git-clone's rules: a build may have rewritten ``.git/config`` (the step sanitizes it first), so
the URL is checked again as if a user had typed it, and its host must not resolve into a private
range unless the deployment lists it (``GitPrivateHosts``), as :func:`steps.git.origin.origin`
checks. Credentials come from SSM through ``GIT_ASKPASS`` (:mod:`steps.git.credentials`).

A push names every ref as ``refs/…:refs/…`` without a leading ``+`` and never passes ``--force``:
the origin takes only fast-forwards, and a ref it refuses ends the job ``PushRejected`` with each
refused ref and git's reason, read from ``git push --porcelain``
(https://git-scm.com/docs/git-push#_output). ``--atomic`` makes the origin take all the refs or
none, so a rejected push leaves the origin as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steps.git import runner
from steps.git.credentials import askpass_for
from steps.git.errors import PushRejected
from steps.git.origin import origin
from steps.git.repo import GitIn

# git push --porcelain's flags (https://git-scm.com/docs/git-push#_output).
_FLAGS = {" ": "fast-forward", "+": "forced", "-": "deleted", "*": "new", "!": "rejected", "=": "up-to-date"}


@dataclass(frozen=True)
class RefStatus:
    """One line of ``git push --porcelain``: ``<flag> TAB <from>:<to> TAB <summary>``."""

    status: str  # a value of _FLAGS
    source: str
    ref: str
    summary: str

    @property
    def reason(self) -> str:
        """``(fetch first)`` -> ``fetch first``; the summary itself when it has no parenthesis."""
        if "(" in self.summary and self.summary.endswith(")"):
            return self.summary[self.summary.index("(") + 1 : -1]
        return self.summary.strip("[]")


def parse_porcelain(output: str) -> list[RefStatus]:
    """The ref lines of ``git push --porcelain``'s output (its ``To <url>`` and ``Done`` lines skipped)."""
    statuses = []
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or len(parts[0]) != 1 or parts[0] not in _FLAGS:
            continue
        source, _, ref = parts[1].partition(":")
        statuses.append(RefStatus(_FLAGS[parts[0]], source, ref, parts[2]))
    return statuses


def push(
    git: GitIn, user_id: str, credentials: str | None, refs: list[str], tags: bool = False
) -> list[dict[str, Any]]:
    """Push ``refs`` (full ref names, each to the same name) and, with ``tags``, every tag; what the origin took.

    Each ref git reported as ``{"ref", "old", "new", "status"}`` (``old`` None for a new ref; ``status``
    ``new``, ``fast-forward`` or ``up-to-date``). ``PushRejected``
    if the origin refused any, with ``details`` ``[{"path": ref, "message", "reason"}]``.
    """
    if any(not ref.startswith(("refs/heads/", "refs/tags/")) for ref in refs):
        raise ValueError("a push names full branch or tag refs, never a refspec of its own (no '+': no force)")
    url = origin(git)
    askpass, secrets = None, {}
    if credentials:
        askpass, secrets = askpass_for(user_id, credentials, git.home)
    before = {ref: _commit(git, ref) for ref in refs}
    refspecs = [f"{ref}:{ref}" for ref in refs]
    args = ["push", "--porcelain", "--atomic", "--no-verify", *(["--tags"] if tags else []), "--", "origin", *refspecs]
    try:
        output = git(*args, allow_http=url.scheme == "http", askpass=askpass, extra_env=secrets)
    except runner.GitFailed as failed:
        statuses = parse_porcelain(failed.stdout)
        refused = [s for s in statuses if s.status == "rejected"]
        if not refused:
            raise  # no ref was judged (the server down, a refused password): GitFailed, retryable
        # With --atomic the refs the origin would have taken are "rejected (atomic push failed)" too;
        # the ones at fault come first in the details.
        refused.sort(key=lambda s: s.reason == "atomic push failed")
        raise PushRejected(
            f"the origin refused {', '.join(s.ref for s in refused)}: nothing was pushed",
            [{"path": s.ref, "message": f"rejected: {s.reason}", "reason": s.reason} for s in refused],
        ) from None
    pushed = []
    for status in parse_porcelain(output):
        new = _commit(git, status.ref) or before.get(status.ref)
        old = new if status.status == "up-to-date" else _old_commit(git, status)
        pushed.append({"ref": status.ref, "old": old, "new": new, "status": status.status})
    return pushed


def _commit(git: GitIn, ref: str) -> str | None:
    try:
        return git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{object}}") or None
    except runner.GitFailed:
        return None


def _old_commit(git: GitIn, status: RefStatus) -> str | None:
    """A fast-forward's summary is ``<old>..<new>`` (abbreviated): the old one is an ancestor, so it is here."""
    if status.status != "fast-forward" or ".." not in status.summary:
        return None
    return _commit(git, status.summary.split("..", 1)[0])
