"""Checks of what users give git: repository URLs, refs and hosts. Every value is hostile until checked.

git reads an argument that starts with ``-`` as an option (``--upload-pack=…`` runs a program),
knows transports that run commands (``ext::``) or read local files (``file://``, plain paths),
and follows URLs to any host, the cloud's metadata service included. These checks run at the
edge, before any git process exists, and refuse with a message that never repeats a password.
What a host name resolves to is only known when git runs; :func:`forbidden_address` is the check
the clone step applies then.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
MAX_REF_LENGTH = 255

# user@host:path, as git reads it: no "://", and the part before the first ":" has no "/".
_SCP_LIKE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.+)$")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class GitInputError(ValueError):
    """A value git must never see; ``path`` says which field of the request it was."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class RepoUrl:
    """A checked repository URL: what git may be given, and the host to check again at run time."""

    url: str
    scheme: str  # https, ssh or http
    host: str
    is_ip_literal: bool


def forbidden_address(address: str) -> bool:
    """Private, loopback, link-local and other addresses no job may reach unless allowed by name."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and (ip.sixtofour is not None or ip.teredo is not None))
    )


def _ip_literal(host: str) -> str | None:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    # Forms that resolvers read as IPv4 but ip_address does not: 2130706433, 0x7f.1, 017700000001.
    if re.fullmatch(r"(?:0x[0-9a-fA-F]+|[0-9]+)(?:\.(?:0x[0-9a-fA-F]+|[0-9]+)){0,3}", candidate):
        return "numeric"
    return None


def _check_host(host: str, allowed: frozenset[str], path: str) -> bool:
    """Refuse a bad or forbidden host; True if it is an IP literal."""
    lowered = host.lower().rstrip(".")
    if not lowered or lowered.startswith("-"):
        raise GitInputError(path, "the repository's host is missing or starts with '-'")
    literal = _ip_literal(lowered)
    if literal is not None:
        if lowered in allowed or literal in allowed:
            return True
        if literal == "numeric" or forbidden_address(literal):
            raise GitInputError(path, "the repository's host is a private, loopback or link-local address")
        return True
    if not _HOST_NAME.match(lowered):
        raise GitInputError(path, "the repository's host is not a valid host name")
    return False


def check_repo_url(
    url: object, allowed_private_hosts: frozenset[str] = frozenset(), path: str = "params.repoUrl"
) -> RepoUrl:
    """``https://``, ``ssh://`` or ``user@host:path``; ``http://`` only for allowed private hosts."""
    if not isinstance(url, str) or not url:
        raise GitInputError(path, "a repository URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise GitInputError(path, f"a repository URL has at most {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise GitInputError(path, "a repository URL has no spaces or control characters")
    if url.startswith("-"):
        raise GitInputError(path, "a repository URL cannot start with '-'")
    if "\\" in url:
        raise GitInputError(path, "a repository URL has no backslashes (it is never a local path)")
    allowed = frozenset(h.lower() for h in allowed_private_hosts)
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("https", "ssh", "http"):
            raise GitInputError(path, "a repository URL is https://, ssh:// or user@host:path")
        if parts.password is not None:
            raise GitInputError(path, "a repository URL carries no password: store it and name it in credentials")
        try:
            host, _ = parts.hostname or "", parts.port
        except ValueError:
            raise GitInputError(path, "the repository URL's port is not a number") from None
        if "%" in (parts.netloc or "") or "@" in (parts.username or ""):
            raise GitInputError(path, "the repository's host or user is malformed")
        if parts.username is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", parts.username):
            raise GitInputError(path, "the repository URL's user name is not plain")
        is_literal = _check_host(host, allowed, path)
        if scheme == "http" and host.lower().rstrip(".") not in allowed:
            raise GitInputError(path, "plain http:// is accepted only for the deployment's private git hosts")
        if not parts.path or parts.path == "/":
            raise GitInputError(path, "the repository URL names no repository")
        if "::" in parts.path or any(segment == ".." for segment in parts.path.split("/")):
            raise GitInputError(path, "the repository URL's path is not plain")
        return RepoUrl(url, scheme, host.lower().rstrip("."), is_literal)
    if "::" in url:
        raise GitInputError(path, "git's remote helpers (such as ext:: and fd::) are not accepted")
    match = _SCP_LIKE.match(url)
    if not match or match.group("path").startswith("-"):
        raise GitInputError(path, "a repository URL is https://, ssh:// or user@host:path, never a local path")
    host = match.group("host")
    is_literal = _check_host(host, allowed, path)
    if any(segment == ".." for segment in match.group("path").split("/")):
        raise GitInputError(path, "the repository URL's path is not plain")
    return RepoUrl(url, "ssh", host.lower().strip("[]").rstrip("."), is_literal)


def check_ref(ref: object, path: str = "params.ref") -> str:
    """A branch, tag or ref name that ``git check-ref-format --allow-onelevel`` accepts, and no option."""
    if not isinstance(ref, str) or not ref:
        raise GitInputError(path, "a ref name is required")
    problem = None
    if len(ref) > MAX_REF_LENGTH:
        problem = f"at most {MAX_REF_LENGTH} characters"
    elif ref.startswith("-"):
        problem = "cannot start with '-'"
    elif _REF_FORBIDDEN.search(ref):
        problem = "has a space, a control character or one of ~ ^ : ? * [ \\"
    elif ".." in ref or "@{" in ref or ref == "@" or "//" in ref:
        problem = "has '..', '@{', '//' or is '@'"
    elif ref.startswith("/") or ref.endswith("/") or ref.endswith("."):
        problem = "cannot start or end with '/' or end with '.'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")):
        problem = "has a component that starts with '.' or ends with '.lock'"
    if problem:
        raise GitInputError(path, f"not a valid ref name: {problem}")
    return ref
