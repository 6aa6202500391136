"""File I/O on a project's EFS workspace that never leaves it, whatever the workspace holds.

The workspace is written by git clones and by users' S3 uploads, so it can hold symlinks
(``src -> /etc``, ``a -> ../../other-project``), FIFOs, names no S3 key may have, and regular files
where a key needs a directory. Every access here starts from a file descriptor of the root and goes
down one component at a time with ``O_NOFOLLOW`` and ``dir_fd``: no string path is ever joined onto
the root and handed to the kernel, so a symlink at any depth is met, refused, and never followed.

Writes go to a temporary file beside the target and are renamed over it only when the caller commits
(after checking sizes and checksums), so a failed or interrupted write never leaves a partial file
under a final name, and ``rename`` replaces a symlink at the final name instead of writing through it.
Listing walks the tree in the byte order of the UTF-8 paths, which is the order S3 ListObjectsV2
returns keys in, so the two sides of a sync can be merged page by page; a page starting after a
cursor skips whole subtrees that lie before it, so paging through a large tree costs about one walk.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.paths import MAX_PATH_BYTES, RESERVED_PREFIX, PathError, check_relative_path
from steps.sync.errors import Collision, UnsafePath

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC  # NONBLOCK: a FIFO must not hang us
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
_TEMP_SUFFIX = ".tmp"
_ATTEMPTS = 3  # a directory created, removed or replaced by another writer while we walk


@dataclass
class Entry:
    """A regular file of the workspace, as a page of :meth:`Workspace.walk` lists it."""

    path: str
    size: int
    mtime_ns: int


def is_temp_name(name: str) -> bool:
    """A name :meth:`Workspace.staged` gives its temporary files."""
    return name.startswith(RESERVED_PREFIX) and name.endswith(_TEMP_SUFFIX)


class Staged:
    """A file being written: data goes to a temporary file until :meth:`commit` renames it into place.

    Only the chunk given to :meth:`write` is held, with the running checksums, so memory stays
    bounded whatever the size of the file.
    """

    def __init__(self, dir_fd: int, name: str, temp_name: str, fd: int, rel: str) -> None:
        self.rel = rel
        self.size = 0
        self._dir_fd = dir_fd
        self._name = name
        self._temp_name = temp_name
        self._fd: int | None = fd
        self._renamed = False
        self._md5 = hashlib.md5(usedforsecurity=False)  # S3's ETag of a single-part upload
        self._sha256 = hashlib.sha256()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def committed(self) -> bool:
        return self._renamed

    def write(self, chunk: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"{self.rel} is already committed or discarded")
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._md5.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def commit(self, mtime_ns: int | None = None) -> None:
        """Put the file under its final name (replacing a file or symlink there) and set its mtime."""
        if self._fd is None:
            raise ValueError(f"{self.rel} is already committed or discarded")
        fd, self._fd = self._fd, None
        os.close(fd)  # NFS reports a failed write-back on close: it must fail the commit
        target = _lstat(self._dir_fd, self._name)
        if target is not None and stat.S_ISDIR(target.st_mode):
            raise Collision(self.rel, f"{self.rel} is a directory in the workspace")
        try:
            os.rename(self._temp_name, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except (IsADirectoryError, NotADirectoryError) as error:  # a directory appeared meanwhile
            raise Collision(self.rel, f"{self.rel} is a directory in the workspace") from error
        self._renamed = True
        if mtime_ns is not None:
            os.utime(self._name, ns=(mtime_ns, mtime_ns), dir_fd=self._dir_fd, follow_symlinks=False)

    def _discard(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        if not self._renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp_name, dir_fd=self._dir_fd)


class Workspace:
    """A project's workspace directory; every path given is project-relative and checked first.

    The root itself is trusted (the platform made it); everything below it is not. Paths are checked
    with :func:`core.paths.check_relative_path` (so a bad one raises :class:`PathError`) and used in NFC.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def staged(self, rel: str) -> Iterator[Staged]:
        """A :class:`Staged` file for ``rel``; leaving without :meth:`Staged.commit` removes its data."""
        parts = _parts(rel)
        path = "/".join(parts)
        dir_fd, temp_name, fd = self._open_temp(parts)
        staged = Staged(dir_fd, parts[-1], temp_name, fd, path)
        try:
            yield staged
        finally:
            try:
                staged._discard()
            finally:
                os.close(dir_fd)

    def _open_temp(self, parts: list[str]) -> tuple[int, str, int]:
        """The parent directory (created as needed) and a new temporary file in it."""
        for attempt in range(_ATTEMPTS):
            dir_fd = self._descend(parts[:-1], create=True)
            try:
                temp_name, fd = _create_temp(dir_fd)
            except FileNotFoundError:  # a delete removed the (empty) parent meanwhile: walk again
                os.close(dir_fd)
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            except BaseException:
                os.close(dir_fd)
                raise
            return dir_fd, temp_name, fd
        raise AssertionError("unreachable")

    # --- reading ---------------------------------------------------------------------------------

    def open_read(self, rel: str) -> tuple[BinaryIO, os.stat_result]:
        """An existing regular file, opened for reading without following any symlink, and its stat."""
        parts = _parts(rel)
        path = "/".join(parts)
        try:
            dir_fd = self._descend(parts[:-1], create=False)
        except Collision as error:
            raise FileNotFoundError(errno.ENOENT, f"{error.path} is not a directory", path) from error
        try:
            fd = _open_regular(dir_fd, parts[-1], path)
        finally:
            os.close(dir_fd)
        info = os.fstat(fd)
        return os.fdopen(fd, "rb"), info

    def stat(self, rel: str) -> os.stat_result | None:
        """``lstat`` of ``rel``; None if it or a parent is missing, or a parent is not a plain directory."""
        parts = _parts(rel)
        try:
            dir_fd = self._descend(parts[:-1], create=False)
        except (FileNotFoundError, Collision, UnsafePath):
            return None
        try:
            return _lstat(dir_fd, parts[-1])
        finally:
            os.close(dir_fd)

    # --- deleting --------------------------------------------------------------------------------

    def delete(self, rel: str) -> bool:
        """Remove the file (or the symlink itself) at ``rel`` and then its parents that became empty.

        True if something was removed, False if nothing was there. A directory at ``rel`` is a
        :class:`Collision`; a symlink among the parents is :class:`UnsafePath`.
        """
        parts = _parts(rel)
        path = "/".join(parts)
        identities: list[tuple[int, int]] = []
        try:
            dir_fd = self._descend(parts[:-1], create=False, identities=identities)
        except (FileNotFoundError, Collision):
            return False
        try:
            info = _lstat(dir_fd, parts[-1])
            if info is None:
                return False
            if stat.S_ISDIR(info.st_mode):
                raise Collision(path, f"{path} is a directory in the workspace")
            try:
                os.unlink(parts[-1], dir_fd=dir_fd)
            except FileNotFoundError:
                return False
            except IsADirectoryError as error:
                raise Collision(path, f"{path} is a directory in the workspace") from error
            dir_fd = _remove_empty_parents(dir_fd, parts[:-1], identities)
            return True
        finally:
            os.close(dir_fd)

    # --- listing ---------------------------------------------------------------------------------

    def walk(
        self, prefix: str = "", start_after: str | None = None, limit: int = 1000
    ) -> tuple[list[Entry], str | None, list[str]]:
        """One page of the regular files under ``prefix``, in S3's key order, after ``start_after``.

        Returns the entries, the cursor for the next page (None when this is the last one) and the
        paths met on the way that are not carried: symlinks, FIFOs and other non-regular files, and
        names :func:`core.paths.check_relative_path` refuses (directories among them end with ``/``).
        The top-level ``.git`` and the sync's temporary files are passed over without a word.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        base_parts = _prefix_parts(prefix)
        after = start_after.encode("utf-8") if start_after is not None else None
        try:
            dir_fd = self._descend(base_parts, create=False)
        except (FileNotFoundError, Collision):
            return [], None, []
        except UnsafePath as error:
            return [], None, [error.path]
        entries: list[Entry] = []
        skipped: list[str] = []
        pending: list[str] = []  # skipped paths met after the last entry taken
        events = _walk_events(dir_fd, prefix, after)
        more = False
        try:
            for event in events:
                if isinstance(event, str):
                    pending.append(event)
                    continue
                if len(entries) == limit:
                    more = True  # the next page starts after the last entry and meets `pending` again
                    break
                skipped.extend(pending)
                pending.clear()
                entries.append(event)
            else:
                skipped.extend(pending)
        finally:
            events.close()
            os.close(dir_fd)
        return entries, (entries[-1].path if more else None), skipped

    def remove_stale_temps(self, older_than_s: float = 3600) -> int:
        """Remove temporary files a crashed writer left behind; returns how many were removed."""
        cutoff = time.time_ns() - int(older_than_s * 1e9)
        fd = self._descend([], create=False)
        try:
            return _remove_temps(fd, "", cutoff)
        finally:
            os.close(fd)

    # --- walking down ----------------------------------------------------------------------------

    def _descend(self, parts: list[str], create: bool, identities: list[tuple[int, int]] | None = None) -> int:
        """A new fd of the directory ``parts`` below the root, opened one component at a time."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        try:
            if identities is not None:
                identities.append(_identity(fd))
            for depth, name in enumerate(parts, start=1):
                child = _open_dir(fd, name, "/".join(parts[:depth]), create)
                os.close(fd)
                fd = child
                if identities is not None:
                    identities.append(_identity(fd))
        except BaseException:
            os.close(fd)
            raise
        return fd


# --- helpers -------------------------------------------------------------------------------------


def _parts(rel: str) -> list[str]:
    return check_relative_path(rel).split("/")


def _prefix_parts(prefix: str) -> list[str]:
    if prefix == "":
        return []
    if not prefix.endswith("/"):
        raise PathError("prefix", "prefix must be empty or end with '/'")
    checked = check_relative_path(prefix[:-1], "prefix")
    if checked != prefix[:-1]:
        raise PathError("prefix", "prefix must be in Unicode NFC")
    return checked.split("/")


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _open_dir(dir_fd: int, name: str, path: str, create: bool) -> int:
    """Open (or create) the directory ``name`` in ``dir_fd``; never through a symlink."""
    for _ in range(_ATTEMPTS):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as error:
            _refuse(dir_fd, name, path, error)
            continue  # it vanished between open and lstat
        with contextlib.suppress(FileExistsError):  # another writer made it first
            os.mkdir(name, 0o755, dir_fd=dir_fd)
    raise UnsafePath(path, f"{path} kept changing while it was opened")


def _refuse(dir_fd: int, name: str, path: str, error: OSError) -> None:
    """Raise what a failed directory open means: a symlink, a file in the way, or the error itself."""
    info = _lstat(dir_fd, name)
    if info is None:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(path, f"{path} is a symlink, which is never followed") from error
    if stat.S_ISREG(info.st_mode):
        raise Collision(path, f"{path} is a file in the workspace, not a directory") from error
    if stat.S_ISDIR(info.st_mode):
        raise error
    raise UnsafePath(path, f"{path} is not a regular file or directory") from error


def _open_regular(dir_fd: int, name: str, path: str) -> int:
    info = _lstat(dir_fd, name)
    if info is None:
        raise FileNotFoundError(errno.ENOENT, "no such file in the workspace", path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(path, f"{path} is a symlink, which is never followed")
    if not stat.S_ISREG(info.st_mode):  # checked before open: opening a device can have effects
        raise UnsafePath(path, f"{path} is not a regular file")
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise
        raise UnsafePath(path, f"{path} changed while it was opened") from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the lstat and the open
        os.close(fd)
        raise UnsafePath(path, f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def _create_temp(dir_fd: int) -> tuple[str, int]:
    for _ in range(_ATTEMPTS):
        name = f"{RESERVED_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
        try:
            return name, os.open(name, _TEMP_FLAGS, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def _remove_empty_parents(fd: int, dirs: list[str], identities: list[tuple[int, int]]) -> int:
    """rmdir the parents of a removed file from the deepest up while they are empty; returns the fd held.

    Each step goes up through ``..`` and checks it is the directory met on the way down (by device
    and inode), so a directory moved elsewhere meanwhile never leads out of the root. The root,
    ``identities[0]``, is never removed; rmdir never removes a directory with contents.
    """
    for depth in range(len(dirs), 0, -1):
        try:
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
        except OSError:
            return fd
        os.close(fd)
        fd = parent
        if _identity(fd) != identities[depth - 1]:
            return fd
        try:
            os.rmdir(dirs[depth - 1], dir_fd=fd)
        except OSError:  # not empty, gone, replaced by a symlink or a file
            return fd
    return fd


# --- walking -------------------------------------------------------------------------------------


@dataclass
class _Child:
    key: bytes  # the name in UTF-8, with "/" after a directory's: S3 orders keys by these bytes
    name: str
    entry: os.DirEntry[str]
    is_dir: bool
    is_file: bool


def _children(fd: int) -> list[_Child]:
    children: list[_Child] = []
    with os.scandir(fd) as listing:
        for entry in listing:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and entry.is_file(follow_symlinks=False)
            except FileNotFoundError:
                continue
            key = os.fsencode(entry.name) + (b"/" if is_dir else b"")
            children.append(_Child(key, entry.name, entry, is_dir, is_file))
    children.sort(key=lambda child: child.key)
    return children


def _carried(path: str) -> bool:
    """Whether ``path`` is one the sync carries: checked, and already NFC (so the S3 key is the name)."""
    try:
        return check_relative_path(path) == path
    except PathError:
        return False


def _printable(path: str) -> str:
    """A path for the skipped list: bytes that are not UTF-8 shown as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _walk_events(fd: int, base: str, after: bytes | None) -> Iterator[Entry | str]:
    """Entries (files carried) and paths (skipped) below the directory ``base``, in key order, after ``after``."""
    base_key = os.fsencode(base)
    for child in _children(fd):
        if base == "" and child.name == ".git":
            continue
        if is_temp_name(child.name) and not child.is_dir:
            continue
        key = base_key + child.key
        if after is not None and key <= after and not (child.is_dir and after.startswith(key)):
            continue  # a file at or before the cursor, or a directory whose whole subtree is
        path = base + child.name
        if not _carried(path):
            yield _printable(path + ("/" if child.is_dir else ""))
        elif child.is_file:
            try:
                info = child.entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield Entry(path, info.st_size, info.st_mtime_ns)
        elif child.is_dir:
            yield from _walk_directory(fd, child.name, path, after)
        else:
            yield _printable(path)


def _walk_directory(fd: int, name: str, path: str, after: bytes | None) -> Iterator[Entry | str]:
    try:
        child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        return
    except OSError:  # replaced by a symlink or a file since it was listed
        yield _printable(path)
        return
    try:
        yield from _walk_events(child_fd, path + "/", after)
    finally:
        os.close(child_fd)


def _remove_temps(fd: int, base: str, cutoff_ns: int) -> int:
    removed = 0
    for child in _children(fd):
        path = base + child.name
        if child.is_dir:
            if (base == "" and child.name == ".git") or len(os.fsencode(path)) > MAX_PATH_BYTES:
                continue
            try:
                child_fd = os.open(child.name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                removed += _remove_temps(child_fd, path + "/", cutoff_ns)
            finally:
                os.close(child_fd)
        elif child.is_file and is_temp_name(child.name):
            try:
                if child.entry.stat(follow_symlinks=False).st_mtime_ns < cutoff_ns:
                    os.unlink(child.name, dir_fd=fd)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed
