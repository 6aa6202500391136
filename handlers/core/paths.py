"""Checks of project-relative file paths: S3 keys under a project's prefix and names in its EFS workspace.

Both sides are hostile. A user picks the S3 keys (``../../other-project/x``, ``a\\b``, a name with a
newline or a bidi override that makes a log line lie), and a git clone picks the workspace's names.
One check decides what the sync will carry either way, so a path that is refused on the way in is
never produced on the way out. It refuses, with a message that never repeats the value (it may hold
control characters): traversal and absolute paths, Unicode look-alikes of ``.``, ``..``, ``/`` and
``\\`` (what a later NFKC step, a browser or another OS could turn into the real thing), git metadata,
the sync's own temporary names, and paths too long to become an S3 key under ``projects/<id>/``.
Accepted paths come back in NFC, so the same name typed on macOS (NFD) and Linux is one file.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_PATH_BYTES = 900  # S3 keys cap at 1024 UTF-8 bytes, and "projects/<projectId>/" comes first
MAX_SEGMENT_BYTES = 255  # NAME_MAX of Linux file systems, EFS included
RESERVED_PREFIX = ".longrun-"  # the sync's temporary files (".longrun-<hex>.tmp")

# C0 and C1 controls, DEL, the line/paragraph separators and the bidirectional formatting characters.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What HFS+ ignores in names, and git with it when it protects ".git" (``is_hfs_dotgit``).
_IGNORABLE = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


class PathError(ValueError):
    """A path the sync will not carry; ``path`` names the request field, ``message`` says why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def check_relative_path(value: object, field: str = "path") -> str:
    """The path in NFC if it is a safe project-relative path, else :class:`PathError`."""
    if not isinstance(value, str):
        raise PathError(field, f"{field} must be a string")
    if not value:
        raise PathError(field, f"{field} is empty")
    _check_characters(value, field)
    if value.startswith("/"):
        raise PathError(field, f"{field} must be relative (it starts with '/')")
    if "\\" in value:
        raise PathError(field, f"{field} contains a backslash")
    path = unicodedata.normalize("NFC", value)
    size = len(path.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        raise PathError(field, f"{field} is {size} bytes long (at most {MAX_PATH_BYTES} in UTF-8)")
    for index, segment in enumerate(path.split("/"), start=1):
        _check_segment(segment, index, field)
    return path


def checked_path(body: dict[str, Any], problems: list[dict[str, str]]) -> str | None:
    """``body["path"]`` checked (NFC), or None with its problem added to ``problems`` (the body's schema violations).

    A request body's path is checked after its schema: when the schema flagged ``path`` already (missing,
    not a string, too long), that one problem is reported, not a second one for the same field.
    """
    if any(p["path"] == "path" for p in problems):
        return None
    try:
        return check_relative_path(body.get("path"))
    except PathError as e:
        problems.append({"path": "path", "message": e.message})
        return None


def relative_key(key: str, prefix: str) -> str | None:
    """The checked relative path of an S3 key listed under ``prefix``, or None if it is not one.

    None for a key outside the prefix, a folder marker (ends with ``/``) and any unsafe path: the
    caller reports such keys and goes on. The result is NFC, so it can differ from the key's tail.
    """
    if prefix and not prefix.endswith("/"):
        raise ValueError("prefix must be empty or end with '/'")
    if not isinstance(key, str) or not key.startswith(prefix):
        return None
    rest = key[len(prefix) :]
    if not rest or rest.endswith("/"):
        return None
    try:
        return check_relative_path(rest, "key")
    except PathError:
        return None


def _check_characters(value: str, field: str) -> None:
    if _SURROGATE.search(value):
        raise PathError(field, f"{field} is not valid Unicode (it contains a lone surrogate)")
    bad = _FORBIDDEN.search(value)
    if bad:
        code = ord(bad.group())
        raise PathError(field, f"{field} contains a control or bidirectional formatting character (U+{code:04X})")


def _check_segment(segment: str, index: int, field: str) -> None:
    where = f"{field} segment {index}"
    if not segment:
        raise PathError(field, f"{where} is empty ('//' or a trailing '/')")
    if segment in (".", ".."):
        raise PathError(field, f"{where} is '{segment}'")
    size = len(segment.encode("utf-8"))
    if size > MAX_SEGMENT_BYTES:
        raise PathError(field, f"{where} is {size} bytes long (at most {MAX_SEGMENT_BYTES} in UTF-8)")
    folded = unicodedata.normalize("NFKC", segment)
    if folded in (".", "..") or "/" in folded or "\\" in folded:
        raise PathError(field, f"{where} contains a look-alike of '.', '..', '/' or '\\'")
    lowered = folded.casefold()
    if _IGNORABLE.sub("", lowered) == ".git":
        raise PathError(field, f"{where} is git metadata ('.git')")
    if lowered.startswith(RESERVED_PREFIX):
        raise PathError(field, f"{where} starts with '{RESERVED_PREFIX}', which the sync reserves")
