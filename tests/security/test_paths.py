"""The hostile-path corpus (``hostile_paths.json``): every entry refused before the sync touches S3 or EFS."""

from __future__ import annotations

import json
import os
import posixpath
import random
import unicodedata
from pathlib import Path

import pytest

from core.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, PathError, check_relative_path, relative_key

CORPUS = json.loads((Path(__file__).parent / "hostile_paths.json").read_text())
PREFIX = "projects/prj-1/"


def test_the_corpus_covers_what_it_claims():
    assert len(CORPUS["paths"]) >= 30
    values = [entry["value"] for entry in CORPUS["paths"]]
    for must in ("../x", "a/../../b", "a\\b", "C:\\x", "\uff0e\uff0e/x", "a\uff0fb", ".git/config", ".GIT/hooks/x"):
        assert must in values
    assert any(isinstance(v, str) and len(v.encode()) == MAX_PATH_BYTES + 1 for v in values)
    assert any(isinstance(v, str) and len(v.encode()) == MAX_SEGMENT_BYTES + 1 and "/" not in v for v in values)
    assert {type(v) for v in values} >= {type(None), int, list, dict, bool, str}


@pytest.mark.parametrize("entry", CORPUS["paths"], ids=[e["why"] for e in CORPUS["paths"]])
def test_hostile_paths_are_refused(entry):
    with pytest.raises(PathError) as refused:
        check_relative_path(entry["value"], "params.paths[0]")
    error = refused.value
    assert isinstance(error, ValueError)
    assert error.path == "params.paths[0]"
    assert error.message and str(error) == error.message
    assert error.message.isprintable(), "a refusal never repeats a control character"
    if isinstance(entry["value"], str) and not entry["value"].isprintable():
        assert entry["value"] not in error.message, "a refusal never repeats a value with control characters"


@pytest.mark.parametrize("entry", CORPUS["paths"], ids=[e["why"] for e in CORPUS["paths"]])
def test_hostile_keys_are_not_relative_keys(entry):
    if isinstance(entry["value"], str):
        assert relative_key(PREFIX + entry["value"], PREFIX) is None


@pytest.mark.parametrize("entry", CORPUS["accepted"], ids=[e["value"][:40] for e in CORPUS["accepted"]])
def test_ordinary_paths_pass(entry):
    assert check_relative_path(entry["value"]) == entry["expect"]
    assert relative_key(PREFIX + entry["value"], PREFIX) == entry["expect"]


def test_the_default_field_is_path():
    with pytest.raises(PathError) as refused:
        check_relative_path("../x")
    assert refused.value.path == "path"


def test_nfd_comes_back_nfc_and_nfc_is_kept():
    nfd = unicodedata.normalize("NFD", "r\u00e9sum\u00e9s/\u00c5ngstr\u00f6m/\ud55c\uae00.txt")
    assert nfd != unicodedata.normalize("NFC", nfd)
    checked = check_relative_path(nfd)
    assert checked == unicodedata.normalize("NFC", nfd)
    assert unicodedata.is_normalized("NFC", checked)
    assert check_relative_path(checked) == checked


def test_limits_are_counted_in_utf8_bytes_after_nfc():
    assert check_relative_path("\u00e9" * 127 + "x") == "\u00e9" * 127 + "x"  # 255 bytes
    # NFD "é" is 3 bytes, NFC 2: the limit applies to what is returned
    decomposed = unicodedata.normalize("NFD", "\u00e9") * 100
    assert len(decomposed.encode()) == 300
    assert check_relative_path(decomposed) == "\u00e9" * 100
    with pytest.raises(PathError):
        check_relative_path("\u20ac" * 86)  # 258 bytes in 86 characters


def test_the_path_limit_is_exact():
    head = "/".join(["d" * 99] * 9)  # 899 bytes
    path = head + "d"  # 900 bytes: the last segment is 100 bytes
    assert len(path.encode()) == MAX_PATH_BYTES
    assert check_relative_path(path) == path
    with pytest.raises(PathError) as refused:
        check_relative_path(path + "d")
    assert "901 bytes" in refused.value.message


ALPHABET = ["a", "b", ".", "/", "\\", "..", "\uff0e", "\uff0f", "\u2025", "\x00", "\n", "\u202e", "g", "i", "t", " "]


def test_every_accepted_path_stays_inside_the_project():
    """Random paths from dangerous pieces: whatever passes resolves under the root and is plain."""
    rng = random.Random(20251126)
    accepted = 0
    for _ in range(20_000):
        value = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8)))
        try:
            checked = check_relative_path(value)
        except PathError:
            continue
        accepted += 1
        segments = checked.split("/")
        assert all(s and s not in (".", "..") for s in segments), value
        assert all(unicodedata.normalize("NFKC", s) not in (".", "..") for s in segments), value
        assert "\\" not in checked and "\x00" not in checked and "\n" not in checked and "\u202e" not in checked
        assert not any(s.lower() == ".git" for s in segments)
        joined = posixpath.normpath(posixpath.join("/root/project", checked))
        assert joined.startswith("/root/project/") and os.path.relpath(joined, "/root/project") == checked
    assert accepted > 1000, "the generator must also produce paths that pass"


def test_relative_key_cases():
    assert relative_key("projects/prj-1/src/a.py", PREFIX) == "src/a.py"
    assert relative_key("projects/prj-10/src/a.py", PREFIX) is None, "another project's key"
    assert relative_key("projects/prj-2/a", PREFIX) is None
    assert relative_key("other/projects/prj-1/a", PREFIX) is None
    assert relative_key("projects/prj-1/", PREFIX) is None, "the prefix itself"
    assert relative_key("projects/prj-1/src/", PREFIX) is None, "a folder marker"
    assert relative_key("projects/prj-1//a", PREFIX) is None
    assert relative_key("projects/prj-1/../prj-2/a", PREFIX) is None
    assert relative_key("projects/prj-1/a/../../prj-2/a", PREFIX) is None
    assert relative_key("projects/prj-1/.git/config", PREFIX) is None
    assert relative_key("projects/prj-1/a\nb", PREFIX) is None
    assert relative_key("projects/prj-1/caf\u0065\u0301", PREFIX) == "caf\u00e9"
    assert relative_key("a/b", "") == "a/b"
    assert relative_key("/a/b", "") is None
    with pytest.raises(ValueError):
        relative_key("projects/prj-10/a", "projects/prj-1")
