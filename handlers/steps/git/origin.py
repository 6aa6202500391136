"""The workspace's ``origin`` as git-pull and git-push reach it: its URL checked again, its host resolved.

A build may have rewritten ``.git/config`` (the steps sanitize it first), so the URL is checked as
if a user had typed it, and its host must not resolve into a private range unless the deployment
lists it (``GitPrivateHosts``). A module of its own, not part of :mod:`steps.git.remote`, so that a
step that only fetches (git-pull) does not take in the push code and the errors it raises.
"""

from __future__ import annotations

from core import config, git_input
from steps.git import runner
from steps.git.errors import NoOrigin
from steps.git.hosts import check_resolved
from steps.git.repo import GitIn


def origin(git: GitIn) -> git_input.RepoUrl:
    """The workspace's ``origin``, checked as a user's URL and resolved; ``NoOrigin`` if there is none."""
    try:
        remote = git("config", "--get", "remote.origin.url")
    except runner.GitFailed:
        remote = ""
    if not remote:
        raise NoOrigin("the workspace has no origin remote: clone a repository into it first (git-clone)")
    allowed = config.git_private_hosts()
    url = git_input.check_repo_url(remote, allowed, "origin")
    check_resolved(url, allowed)
    return url
