"""The workspace file I/O of the sync (``steps.sync.files``): atomic writes, no symlink ever followed,
S3's key order in listings, paging that does not re-walk the tree, and bounded memory."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import PathError
from steps.sync.files import Collision, Entry, UnsafePath, Workspace

MIB = 1024 * 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "projects" / "prj-1" / "workspace"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Another project's directory: nothing done through the workspace may touch it."""
    path = tmp_path / "projects" / "prj-2"
    path.mkdir(parents=True)
    (path / "secret.txt").write_text("secret")
    return path


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace(root)


def tree(path: Path) -> list[str]:
    """Every name below ``path`` (symlinks not followed), relative, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), path))
    return sorted(found)


def temps(path: Path) -> list[str]:
    return [p for p in tree(path) if os.path.basename(p).startswith(".longrun-")]


def write(ws: Workspace, rel: str, data: bytes, mtime_ns: int | None = None) -> None:
    with ws.staged(rel) as staged:
        staged.write(data)
        staged.commit(mtime_ns)


# --- staged writes -------------------------------------------------------------------------------


def test_staged_write_commits_content_checksums_and_mtime(ws: Workspace, root: Path):
    mtime = 1_700_000_000_123_456_789
    with ws.staged("src/app/main.py") as staged:
        staged.write(b"print('hello')\n")
        staged.write(b"")
        staged.write(b"# bye\n")
        assert not (root / "src/app/main.py").exists(), "nothing under the final name before commit"
        assert len(temps(root)) == 1
        staged.commit(mtime)
    data = b"print('hello')\n# bye\n"
    assert (root / "src/app/main.py").read_bytes() == data
    assert staged.size == len(data)
    assert staged.md5 == hashlib.md5(data).hexdigest()
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert os.lstat(root / "src/app/main.py").st_mtime_ns == mtime
    assert temps(root) == []
    assert stat.S_ISREG(os.lstat(root / "src/app/main.py").st_mode)


def test_commit_without_mtime_and_replacing_a_file(ws: Workspace, root: Path):
    write(ws, "a.txt", b"old")
    with ws.staged("a.txt") as staged:
        staged.write(b"new")
        assert (root / "a.txt").read_bytes() == b"old", "the old file stays whole until the commit"
        staged.commit()
    assert (root / "a.txt").read_bytes() == b"new"
    assert temps(root) == []
    with pytest.raises(ValueError):
        staged.write(b"more")


def test_an_exception_inside_staged_leaves_no_file_and_no_temp(ws: Workspace, root: Path):
    with pytest.raises(RuntimeError), ws.staged("dir/new.bin") as staged:
        staged.write(b"partial")
        raise RuntimeError("upload broke")
    assert not (root / "dir/new.bin").exists()
    assert temps(root) == []


def test_leaving_without_commit_keeps_the_old_file(ws: Workspace, root: Path):
    write(ws, "a.txt", b"good")
    with ws.staged("a.txt") as staged:
        staged.write(b"corrupt")  # the caller found a checksum mismatch and does not commit
    assert (root / "a.txt").read_bytes() == b"good"
    assert temps(root) == []


def test_hostile_paths_are_refused_before_any_io(ws: Workspace, root: Path):
    for bad in ("../x", "/etc/x", "a/../../x", ".git/config", "a\\b", ".longrun-1.tmp"):
        with pytest.raises(PathError), ws.staged(bad):
            pass
        with pytest.raises(PathError):
            ws.open_read(bad)
        with pytest.raises(PathError):
            ws.delete(bad)
    assert tree(root) == []


def test_a_symlinked_directory_is_never_written_through(ws: Workspace, root: Path, outside: Path):
    (root / "escape").symlink_to(outside)
    (root / "rel").symlink_to("../../prj-2")  # what a git clone can bring
    (root / "d").mkdir()
    (root / "d" / "link").symlink_to(outside)
    for rel in ("escape/x", "escape/new/dir/x", "rel/x", "d/link/x", "escape/secret.txt"):
        with pytest.raises(UnsafePath) as refused, ws.staged(rel) as staged:
            staged.write(b"pwned")
            staged.commit()
        assert refused.value.path in ("escape", "rel", "d/link")
    assert tree(outside) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
    assert temps(root) == []


def test_a_symlink_at_the_final_name_is_replaced_not_followed(ws: Workspace, root: Path, outside: Path):
    (root / "target").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "created-outside")
    write(ws, "target", b"mine")
    write(ws, "dangling", b"mine too")
    assert not (root / "target").is_symlink() and (root / "target").read_bytes() == b"mine"
    assert not (root / "dangling").is_symlink() and (root / "dangling").read_bytes() == b"mine too"
    assert tree(outside) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_a_file_where_a_directory_is_needed_is_a_collision(ws: Workspace, root: Path):
    write(ws, "a", b"file")
    with pytest.raises(Collision) as refused, ws.staged("a/b"):
        pass
    assert refused.value.path == "a"
    with pytest.raises(Collision), ws.staged("a/b/c/d"):
        pass
    assert (root / "a").read_bytes() == b"file"
    assert tree(root) == ["a"]


def test_a_directory_at_the_target_is_a_collision(ws: Workspace, root: Path):
    (root / "d" / "inner").mkdir(parents=True)
    with pytest.raises(Collision) as refused, ws.staged("d") as staged:
        staged.write(b"x")
        staged.commit()
    assert refused.value.path == "d"
    assert (root / "d" / "inner").is_dir()
    assert temps(root) == []


def test_other_special_files_are_not_followed_as_directories(ws: Workspace, root: Path):
    os.mkfifo(root / "fifo")
    with pytest.raises(UnsafePath), ws.staged("fifo/x"):
        pass


def test_concurrent_writers_create_the_same_directories(ws: Workspace, root: Path):
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        try:
            barrier.wait()
            for j in range(20):
                write(ws, f"shared/deep/dir/{j}/f{i}", b"%d" % i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len([p for p in tree(root) if "/f" in p]) == 160
    assert temps(root) == []


# --- reading and stat ----------------------------------------------------------------------------


def test_open_read_returns_the_file_and_its_stat(ws: Workspace, root: Path):
    write(ws, "x/y.txt", b"hello", 1_600_000_000_000_000_000)
    file, info = ws.open_read("x/y.txt")
    with file:
        assert file.read() == b"hello"
    assert info.st_size == 5 and info.st_mtime_ns == 1_600_000_000_000_000_000


@pytest.mark.timeout(20)
def test_open_read_refuses_symlinks_and_special_files(ws: Workspace, root: Path, outside: Path):
    (root / "link").symlink_to(outside / "secret.txt")
    (root / "escape").symlink_to(outside)
    (root / "dir").mkdir()
    os.mkfifo(root / "fifo")  # opening it for reading would block forever
    for rel in ("link", "escape/secret.txt", "dir", "fifo"):
        with pytest.raises(UnsafePath) as refused:
            ws.open_read(rel)
        assert ("symlink" in refused.value.message) == (rel in ("link", "escape/secret.txt"))
    for rel in ("missing", "dir/missing", "nodir/x"):
        with pytest.raises(FileNotFoundError):
            ws.open_read(rel)
    write(ws, "file", b"x")
    with pytest.raises(FileNotFoundError):
        ws.open_read("file/x")


def test_stat_is_lstat_through_the_directory_fds(ws: Workspace, root: Path, outside: Path):
    write(ws, "a/b.txt", b"12345")
    (root / "escape").symlink_to(outside)
    (root / "link").symlink_to(outside / "secret.txt")
    info = ws.stat("a/b.txt")
    assert info is not None and info.st_size == 5 and stat.S_ISREG(info.st_mode)
    link = ws.stat("link")
    assert link is not None and stat.S_ISLNK(link.st_mode)
    assert ws.stat("escape/secret.txt") is None
    assert ws.stat("missing") is None
    assert ws.stat("a/b.txt/c") is None
    assert ws.stat("nope/c") is None


# --- deleting ------------------------------------------------------------------------------------


def test_delete_removes_the_file_and_parents_that_became_empty(ws: Workspace, root: Path):
    write(ws, "x/y/z/f", b"1")
    write(ws, "x/keep", b"2")
    assert ws.delete("x/y/z/f") is True
    assert tree(root) == ["x", "x/keep"]
    assert ws.delete("x/keep") is True
    assert tree(root) == [] and root.is_dir(), "the root itself stays"
    assert ws.delete("x/keep") is False
    assert ws.delete("never/was") is False


def test_delete_keeps_directories_with_contents(ws: Workspace, root: Path):
    write(ws, "a/b/f1", b"1")
    write(ws, "a/b/f2", b"2")
    (root / "a" / "empty-but-not-ours").mkdir()
    assert ws.delete("a/b/f1") is True
    assert tree(root) == ["a", "a/b", "a/b/f2", "a/empty-but-not-ours"]


def test_delete_never_touches_a_symlinks_target(ws: Workspace, root: Path, outside: Path):
    (root / "sub").mkdir()
    (root / "sub" / "link").symlink_to(outside / "secret.txt")
    assert ws.delete("sub/link") is True
    assert tree(root) == []
    assert (outside / "secret.txt").read_text() == "secret"
    (root / "escape").symlink_to(outside)
    with pytest.raises(UnsafePath):
        ws.delete("escape/secret.txt")
    assert (outside / "secret.txt").read_text() == "secret"
    (root / "dir").mkdir()
    with pytest.raises(Collision):
        ws.delete("dir")
    assert (root / "dir").is_dir()


# --- walking -------------------------------------------------------------------------------------

TRICKY = [
    "!bang",
    "a b",
    "a-b",
    "a.txt",
    "a/b",
    "a/c-d",
    "a/c.txt",
    "a/c/d",
    "a/c0",
    "a0",
    "ab",
    "A",
    "Z",
    "b/x",
    "b-/x",
    "b./x",
    "z~",
    "\u00e9t\u00e9.md",
    "\u65e5\u672c/\u8a9e.txt",
    "\U0001f600",
    "\uff21",
    "~",
]


def build(root: Path, paths: list[str]) -> None:
    for rel in paths:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)


def naive_walk(path: Path, base: str = "") -> list[str]:
    """Files in the order of a walk that sorts each directory by name (what a plain sorted walk gives)."""
    out: list[str] = []
    for name in sorted(os.listdir(path)):
        if (path / name).is_dir():
            out.extend(naive_walk(path / name, f"{base}{name}/"))
        else:
            out.append(base + name)
    return out


def test_walk_lists_in_s3_key_order(ws: Workspace, root: Path):
    build(root, TRICKY)
    entries, cursor, skipped = ws.walk()
    expected = sorted(TRICKY, key=lambda p: p.encode())
    assert [e.path for e in entries] == expected
    assert expected != naive_walk(root), "the tree is tricky: sorting each directory's names is not S3's order"
    assert cursor is None and skipped == []
    by_path = {e.path: e for e in entries}
    info = os.lstat(root / "a/c/d")
    assert by_path["a/c/d"] == Entry("a/c/d", info.st_size, info.st_mtime_ns)


def test_paged_walk_concatenates_to_the_full_walk(ws: Workspace, root: Path, outside: Path):
    build(root, TRICKY)
    (root / "a" / "link").symlink_to(outside)
    (root / "b" / "bad\nname").write_text("x")
    full, _, full_skipped = ws.walk()
    assert full_skipped == ["a/link", "b/bad\nname"]
    pages, skipped, cursor = [], [], None
    while True:
        entries, cursor, page_skipped = ws.walk(start_after=cursor, limit=3)
        assert 1 <= len(entries) <= 3 or (not entries and cursor is None)
        pages.extend(entries)
        skipped.extend(page_skipped)
        if cursor is None:
            break
        assert cursor == entries[-1].path
    assert pages == full
    assert skipped == full_skipped, "each skipped path is reported once"


def test_walk_start_after_and_prefix(ws: Workspace, root: Path):
    build(root, TRICKY)
    ordered = sorted(TRICKY, key=lambda p: p.encode())
    for after in ("a/c", "a/c/", "a/c/d", "a", "a/", "b-/x", "zzz", "", "\uffff"):
        entries, _, _ = ws.walk(start_after=after)
        assert [e.path for e in entries] == [p for p in ordered if p.encode() > after.encode()], after
    entries, cursor, _ = ws.walk(prefix="a/")
    assert [e.path for e in entries] == ["a/b", "a/c-d", "a/c.txt", "a/c/d", "a/c0"] and cursor is None
    entries, cursor, _ = ws.walk(prefix="a/", start_after="a/c-d", limit=2)
    assert [e.path for e in entries] == ["a/c.txt", "a/c/d"] and cursor == "a/c/d"
    assert ws.walk(prefix="a/c/", start_after="0")[0] == [Entry("a/c/d", 5, os.lstat(root / "a/c/d").st_mtime_ns)]
    assert ws.walk(prefix="missing/") == ([], None, [])
    assert ws.walk(prefix="a.txt/") == ([], None, [])
    with pytest.raises(PathError):
        ws.walk(prefix="a")
    with pytest.raises(PathError):
        ws.walk(prefix="../")


def test_walk_reports_symlinks_and_special_files_and_never_follows_them(ws: Workspace, root: Path, outside: Path):
    build(root, ["keep.txt", "d/inner.txt"])
    (root / "escape").symlink_to(outside)
    (root / "d" / "file-link").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "nothing")
    os.mkfifo(root / "pipe")
    entries, cursor, skipped = ws.walk()
    assert cursor is None
    assert [e.path for e in entries] == ["d/inner.txt", "keep.txt"]
    assert skipped == ["d/file-link", "dangling", "escape", "pipe"], "in key order, like the entries"
    assert (root / "escape").is_symlink()
    entries, _, skipped = ws.walk(prefix="escape/")
    assert entries == [] and skipped == ["escape"]


def test_walk_passes_over_git_and_temps_and_reports_refused_names(ws: Workspace, root: Path):
    build(root, [".git/config", ".git/objects/ab/cdef", "src/a.py", ".gitignore", "vendor/lib/.git/HEAD"])
    (root / "src" / ".longrun-0123abcd.tmp").write_text("partial")
    (root / ".longrun-x.tmp").write_text("partial")
    (root / "src" / "bad\u202ename").write_text("x")
    (root / "src" / "caf\u0065\u0301").write_text("nfd")  # an S3 key is the NFC name: not carried
    (root / "\uff0e\uff0e").mkdir()
    (root / "\uff0e\uff0e" / "x").write_text("x")
    os.mkdir(os.fsencode(root) + b"/latin1-\xe9")
    entries, _, skipped = ws.walk()
    assert [e.path for e in entries] == [".gitignore", "src/a.py"]
    assert "src/bad\u202ename" in skipped
    assert "src/caf\u0065\u0301" in skipped
    assert "\uff0e\uff0e/" in skipped
    assert "latin1-\\xe9/" in skipped
    assert "vendor/lib/.git/" in skipped
    assert not any(".longrun-" in p for p in skipped)
    assert not any(p.startswith(".git/") or p == ".git/" for p in skipped)


def test_a_paged_walk_does_not_rewalk_the_tree(ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch):
    """2,000 files in 40 directories, pages of 100: each directory is listed a small constant number of times."""
    names = {}
    for d in range(40):
        directory = root / f"dir{d:02d}"
        directory.mkdir()
        names[os.lstat(directory).st_ino] = directory.name
        for f in range(50):
            (directory / f"file{f:02d}").write_bytes(b"")
    names[os.lstat(root).st_ino] = "<root>"
    listed: Counter[str] = Counter()
    real_scandir = os.scandir

    def counting_scandir(path: object = ".") -> Iterator[os.DirEntry]:
        ino = os.fstat(path).st_ino if isinstance(path, int) else os.lstat(path).st_ino
        listed[names.get(ino, "?")] += 1
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    paths, cursor, pages = [], None, 0
    while True:
        entries, cursor, _ = ws.walk(start_after=cursor, limit=100)
        pages += 1
        paths.extend(e.path for e in entries)
        if cursor is None:
            break
    assert len(paths) == 2000 and paths == sorted(paths)
    assert pages in (20, 21)
    assert listed["<root>"] == pages
    assert set(listed) == {"<root>"} | {f"dir{d:02d}" for d in range(40)}
    assert max(count for name, count in listed.items() if name != "<root>") <= 2
    assert sum(listed.values()) <= 40 * 2 + pages, "a walk per page would list 20 x 41 directories"


def test_remove_stale_temps(ws: Workspace, root: Path):
    build(root, ["a/keep.txt"])
    old, fresh = root / "a" / ".longrun-old.tmp", root / ".longrun-fresh.tmp"
    old.write_text("x")
    fresh.write_text("y")
    hour_ago = time.time_ns() - 7200 * 10**9
    os.utime(old, ns=(hour_ago, hour_ago))
    assert ws.remove_stale_temps(3600) == 1
    assert not old.exists() and fresh.exists() and (root / "a/keep.txt").exists()


# --- memory --------------------------------------------------------------------------------------


def test_a_300_mib_write_keeps_memory_bounded(ws: Workspace, root: Path):
    def chunks() -> Iterator[bytes]:
        for i in range(300):
            yield bytes([i % 251]) * MIB

    expected = hashlib.md5()
    tracemalloc.start()
    try:
        with ws.staged("big/blob.bin") as staged:
            for chunk in chunks():
                staged.write(chunk)
                expected.update(chunk)
            staged.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert staged.size == 300 * MIB == os.lstat(root / "big/blob.bin").st_size
    assert staged.md5 == expected.hexdigest()
    os.unlink(root / "big/blob.bin")
