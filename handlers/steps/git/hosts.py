"""The run-time check of a repository's host, shared by every git step that reaches a remote.

The edge (:mod:`core.git_input`) refuses private IP literals, but what a host *name* resolves to is
only known when git is about to connect: a name may point at 169.254.169.254 or 10.0.0.5. Names the
deployment lists in ``GitPrivateHosts`` are let through.
"""

from __future__ import annotations

import socket

from core import git_input
from steps.git.errors import ForbiddenHost, HostNotFound


def check_resolved(url: git_input.RepoUrl, allowed: frozenset[str]) -> None:
    """``ForbiddenHost`` if the host resolves into a private range, ``HostNotFound`` if it does not resolve."""
    if url.is_ip_literal or url.host in allowed:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(url.host, None)}
    except socket.gaierror as e:
        raise HostNotFound(f"{url.host} does not resolve: {e.strerror}") from None
    if any(git_input.forbidden_address(a.split("%")[0]) for a in addresses):
        raise ForbiddenHost(f"{url.host} resolves to a private, loopback or link-local address")
