"""Uploads and downloads take the same paths: the hostile-path corpus, through the API, for both.

Every entry of ``tests/security/hostile_paths.json`` is ``400 ValidationError`` with the path's own
detail (the message core.paths gives), before any S3 call or signature; every accepted entry is
not refused for its path. One test per call, so a call that stops checking paths fails by name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core import paths

from .conftest import USER
from .test_api import assert_error, call, put_project

CORPUS = json.loads((Path(__file__).parents[1] / "security" / "hostile_paths.json").read_text())
PROJECT = "prj-0123456789abcdef"
CALLS = ("uploads", "downloads")


@pytest.fixture
def project(aws: Any) -> str:
    put_project(aws, PROJECT, USER)
    return PROJECT


def _ask(kind: str, value: Any) -> Any:
    # json.dumps escapes what UTF-8 cannot carry (a lone surrogate arrives as "\ud800").
    return call("POST", f"/projects/{PROJECT}/{kind}", raw=json.dumps({"path": value}))


@pytest.mark.parametrize("kind", CALLS)
@pytest.mark.parametrize("entry", CORPUS["paths"], ids=[e["why"] for e in CORPUS["paths"]])
def test_a_hostile_path_is_400_with_the_paths_detail(aws: Any, project: str, kind: str, entry: dict) -> None:
    error = assert_error(_ask(kind, entry["value"]), 400, "ValidationError")
    details = [d for d in error["details"] if d["path"] == "path"]
    assert details, error
    try:
        paths.check_relative_path(entry["value"])
    except paths.PathError as refused:
        expected = refused.message
    else:  # pragma: no cover - the corpus test (tests/security/test_paths.py) proves every entry is refused
        pytest.fail("the corpus entry passes core.paths")
    schema_only = not isinstance(entry["value"], str) or not entry["value"] or len(entry["value"]) > 900
    assert schema_only or [d["message"] for d in details] == [expected], details
    assert all(d["message"].isprintable() for d in details), "a refusal never repeats a control character"


@pytest.mark.parametrize("kind", CALLS)
@pytest.mark.parametrize("entry", CORPUS["accepted"], ids=[e["value"][:40] for e in CORPUS["accepted"]])
def test_an_accepted_path_is_not_refused_for_its_path(aws: Any, project: str, kind: str, entry: dict) -> None:
    answer = _ask(kind, entry["value"])
    if kind == "uploads":
        assert answer.status == 200, answer.body
        assert answer.body["path"] == entry["expect"]
    else:  # nothing was uploaded: the file is not found, the path was not refused
        error = assert_error(answer, 404, "NotFound")
        assert entry["expect"] in error["message"]
