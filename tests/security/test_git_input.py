"""The hostile-input corpus for git (``hostile_git_inputs.json``): every entry refused before git runs."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from core.git_input import GitInputError, check_ref, check_repo_url, forbidden_address

CORPUS = json.loads((Path(__file__).parent / "hostile_git_inputs.json").read_text())


@pytest.fixture(autouse=True)
def no_process_may_start(monkeypatch):
    """A check that started git (or anything) to decide would already have lost."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.parametrize("entry", CORPUS["urls"], ids=[u["why"] for u in CORPUS["urls"]])
def test_hostile_urls_are_refused(entry):
    with pytest.raises(GitInputError) as refused:
        check_repo_url(entry["value"])
    assert refused.value.path == "params.repoUrl"
    for secret in ("hunter2", "s3cret"):
        assert secret not in refused.value.message, "a refusal never repeats a password"


@pytest.mark.parametrize("url", CORPUS["accepted_urls"])
def test_ordinary_urls_pass(url):
    checked = check_repo_url(url)
    assert checked.url == url and checked.scheme in ("https", "ssh")


def test_private_hosts_pass_only_when_listed_and_then_over_http_too():
    with pytest.raises(GitInputError):
        check_repo_url("http://127.0.0.1:8080/repo.git")
    allowed = frozenset({"127.0.0.1", "localhost"})
    assert check_repo_url("http://127.0.0.1:8080/repo.git", allowed).host == "127.0.0.1"
    assert check_repo_url("http://localhost:8080/repo.git", allowed).scheme == "http"
    with pytest.raises(GitInputError):
        check_repo_url("http://10.0.0.1/repo.git", allowed)


def test_the_corpus_is_large_enough():
    assert len(CORPUS["urls"]) + len(CORPUS["refs"]) >= 30


@pytest.mark.parametrize("entry", CORPUS["refs"], ids=[r["why"] + " " + repr(r["value"]) for r in CORPUS["refs"]])
def test_hostile_refs_are_refused(entry):
    with pytest.raises(GitInputError):
        check_ref(entry["value"])


# Every params field of a git kind that reaches git as a ref, as POST /jobs sees it: (type, params
# with VALUE where the hostile ref goes, the path the 400 names).
REF_FIELDS = [
    ("git-merge", {"source": "VALUE", "target": "main"}, "params.source"),
    ("git-merge", {"flow": "feature-finish", "name": "VALUE"}, "params.name"),
    ("git-branch", {"name": "VALUE"}, "params.name"),
    ("git-branch", {"flow": "hotfix-start", "name": "VALUE"}, "params.name"),
    ("git-branch", {"name": "ok", "from": "VALUE"}, "params.from"),
    ("git-push", {"branches": ["main", "VALUE"]}, "params.branches[1]"),
]


def _with(params: dict, value: str) -> dict:
    return {k: ([value if x == "VALUE" else x for x in v] if isinstance(v, list) else value if v == "VALUE" else v)
            for k, v in params.items()}  # fmt: skip


@pytest.mark.parametrize("entry", CORPUS["refs"], ids=[r["why"] + " " + repr(r["value"]) for r in CORPUS["refs"]])
@pytest.mark.parametrize(("job_type", "params", "path"), REF_FIELDS, ids=[f"{t}:{p}" for t, _, p in REF_FIELDS])
def test_hostile_refs_are_refused_in_every_git_kind(entry, job_type, params, path):
    """The edge's check (core.submission), then the step's own: git-branch checks again before git runs."""
    from core.submission import _git_problems
    from steps.git import branch

    problems = _git_problems(_with(params, entry["value"]))
    assert [p["path"] for p in problems] == [path], problems
    if job_type == "git-branch":
        with pytest.raises(GitInputError) as refused:
            branch.plan(_with(params, entry["value"]))
        assert refused.value.path == path


@pytest.mark.parametrize("ref", CORPUS["accepted_refs"])
def test_ordinary_refs_pass(ref):
    assert check_ref(ref) == ref


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [("127.0.0.1", True), ("10.2.3.4", True), ("169.254.169.254", True), ("::1", True), ("fd00::1", True),
     ("::ffff:10.0.0.1", True), ("0.0.0.0", True), ("224.0.0.1", True), ("8.8.8.8", False),
     ("2606:4700:4700::1111", False)],
)  # fmt: skip
def test_forbidden_addresses(address, forbidden):
    assert forbidden_address(address) is forbidden


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to compare against")
def test_ref_check_agrees_with_git_check_ref_format(monkeypatch):
    """On a few thousand generated names, ours and git's agree (ours also refuses a leading '-')."""
    monkeypatch.undo()  # this test runs git on purpose
    alphabet = [*"abc/.-_@{}~^:?*[\\ ", "main", "/x", ".lock", "..", "@{", "é", "\t"]
    rng = random.Random(20261126)
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(3000)}
    names = sorted(n for n in names if not n.startswith("-"))
    disagreements = []
    for name in names:
        gits = (
            subprocess.run(["git", "check-ref-format", "--allow-onelevel", name], capture_output=True).returncode == 0
        )
        try:
            check_ref(name)
            ours = True
        except GitInputError:
            ours = False
        if gits != ours:
            disagreements.append((name, gits, ours))
    assert not disagreements, disagreements[:20]
