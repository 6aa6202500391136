"""Properties of the three validators that stand between users and the file system, git and the network.

The corpora (test_paths.py, test_git_input.py) list the attacks we know; these properties say what
must hold for every input hypothesis can build from the dangerous pieces: an accepted path stays in
its project, an accepted ref is one git accepts and never an option, an accepted URL never points at
a private address, carries no password and uses an allowed scheme, as a second URL parser reads it
too. Each test is bounded (a few hundred derandomized examples, no database): a second or two.
"""

from __future__ import annotations

import ipaddress
import posixpath
import shutil
import socket
import subprocess
import unicodedata
from urllib.parse import urlsplit

import pytest
import urllib3
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from core.git_input import GitInputError, check_ref, check_repo_url, forbidden_address
from core.paths import MAX_PATH_BYTES, PathError, check_relative_path, relative_key

BOUNDED = settings(max_examples=400, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip
ROOT = "/mnt/efs/projects/prj-1"
PREFIX = "projects/prj-1/"

# --- paths ----------------------------------------------------------------------------------------

# Pieces that have broken path checks elsewhere: traversal, separators and their look-alikes
# (fullwidth, one-dot leader, division slash), git metadata in any case, NUL, controls, bidi.
PATH_PIECES = [
    "..", ".", "/", "\\", ".git", ".GIT", ".Git", "\uff0e", "\uff0f", "\u2025", "\u2215", "\ufe52", "\x00",
    "\n", "\r", "\t", "\x1b", "\u202e", "\u200d", "\ufeff", "e\u0301", "a", "b.txt", "src", " ", "~", ".longrun-",
]  # fmt: skip
segments = st.one_of(st.sampled_from(PATH_PIECES), st.text(min_size=1, max_size=6))
hostile_paths = st.one_of(
    st.lists(st.one_of(segments, st.lists(segments, min_size=1, max_size=3).map("".join)), min_size=1, max_size=6).map(
        "/".join
    ),
    st.text(max_size=30),
)


@BOUNDED
@given(hostile_paths)
@example("a/../../prj-2/x")
@example("\uff0e\uff0e/x")
def test_an_accepted_path_stays_inside_the_project_and_is_plain(value: str) -> None:
    try:
        checked = check_relative_path(value)
    except PathError as refused:
        assert refused.message.isprintable(), "a refusal never carries a control character"
        return
    parts = checked.split("/")
    assert all(part not in ("", ".", "..") for part in parts)
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in checked), "no control character or NUL"
    assert "\\" not in checked
    assert not any(unicodedata.normalize("NFKC", part).casefold() == ".git" for part in parts)
    assert unicodedata.is_normalized("NFC", checked)
    assert len(checked.encode("utf-8")) <= MAX_PATH_BYTES
    joined = posixpath.normpath(posixpath.join(ROOT, checked))
    assert joined.startswith(ROOT + "/") and joined == f"{ROOT}/{checked}", "normalising moves nothing"
    assert check_relative_path(checked) == checked, "checking is idempotent"
    assert relative_key(PREFIX + checked, PREFIX) == checked, "what goes in as a key comes back as the path"


@BOUNDED
@given(st.one_of(st.none(), st.integers(), st.binary(max_size=8), st.lists(st.text(max_size=3), max_size=2)))
def test_a_path_that_is_not_a_string_is_refused_not_crashed_on(value: object) -> None:
    with pytest.raises(PathError):
        check_relative_path(value)


# --- refs -----------------------------------------------------------------------------------------

REF_PIECES = [*"abz09/._-@{}~^:?*[\\ \t", "main", "feature/", ".lock", "..", "@{", "//", "é", "\x7f", "-"]
refs = st.one_of(
    st.lists(st.sampled_from(REF_PIECES), min_size=1, max_size=10).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12),
)


def _git_accepts(name: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--allow-onelevel", name], capture_output=True, check=False)
    return done.returncode == 0


@BOUNDED
@given(refs)
def test_an_accepted_ref_is_never_an_option_and_comes_back_unchanged(ref: str) -> None:
    try:
        checked = check_ref(ref)
    except GitInputError as refused:
        assert refused.path == "params.ref"
        return
    assert checked == ref
    assert not checked.startswith("-")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to compare against")
@settings(BOUNDED, max_examples=300)
@given(refs)
@example("a.lock/b")
@example("a/.b")
@example("@")
def test_the_ref_check_agrees_with_git(ref: str) -> None:
    """As the corpus test does, with git's own check as the oracle (ours also refuses a leading '-')."""
    assume(not ref.startswith("-"))
    try:
        check_ref(ref)
        ours = True
    except GitInputError:
        ours = False
    assert ours == _git_accepts(ref), f"ours={ours} for {ref!r}"


# --- repository URLs ------------------------------------------------------------------------------

FORBIDDEN_V4 = st.one_of(
    st.ip_addresses(v=4, network="127.0.0.0/8"),
    st.ip_addresses(v=4, network="10.0.0.0/8"),
    st.ip_addresses(v=4, network="172.16.0.0/12"),
    st.ip_addresses(v=4, network="192.168.0.0/16"),
    st.ip_addresses(v=4, network="169.254.0.0/16"),
    st.ip_addresses(v=4, network="0.0.0.0/8"),
)
FORBIDDEN_V6 = st.one_of(
    st.just(ipaddress.IPv6Address("::1")),
    st.ip_addresses(v=6, network="fc00::/7"),
    st.ip_addresses(v=6, network="fe80::/10"),
)


def _spellings(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> st.SearchStrategy[str]:
    """The ways a URL can name one address: dotted, one integer, hex, octal, IPv4-mapped IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        return st.sampled_from([f"[{address}]", f"[{address.exploded}]"])
    number = int(address)
    return st.sampled_from([
        str(address), str(number), hex(number), "0" + oct(number)[2:], f"[::ffff:{address}]",
        ".".join(f"0x{int(octet):02x}" for octet in str(address).split(".")),
        f"{str(address).split('.')[0]}.{number & 0xFFFFFF}",
    ])  # fmt: skip


def _url_around(host: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    decoration = st.sampled_from(["", "git@", "user@", "evil.com@", "a:b@", ":@"])
    port = st.sampled_from(["", ":22", ":443", ":0", ":65536", ":x"])
    scheme = st.sampled_from(["https://", "ssh://", "http://", "HTTPS://", "git://", "file://", "ftp://"])
    return st.one_of(
        st.builds(lambda s, d, h, p: f"{s}{d}{h}{p}/org/repo.git", scheme, decoration, host, port),
        # user@host:path: git reads everything before the first ':' as the host ("a:b@h:x" is host "a").
        st.builds(lambda d, h: f"{d}{h}:org/repo.git", st.sampled_from(["", "git@", "user@", "evil.com@"]), host),
    )


forbidden_urls = _url_around(st.one_of(FORBIDDEN_V4, FORBIDDEN_V6).flatmap(_spellings))
public_hosts = st.sampled_from(["github.com", "gitlab.example.org", "8.8.8.8", "[2606:4700:4700::1111]"])
any_urls = st.one_of(_url_around(public_hosts), forbidden_urls, st.text(max_size=40))


def _host_as_another_parser_reads_it(url: str) -> str | None:
    """The host urllib3 (the HTTP stack under botocore and requests) finds in ``url``."""
    try:
        return urllib3.util.parse_url(url).host
    except Exception:  # a URL urllib3 cannot read has no host for it
        return None


def _as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """What a resolver makes of an IP literal, legacy IPv4 forms (``127.1``, ``0x7f.1``) included."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@BOUNDED
@given(forbidden_urls)
def test_a_private_loopback_or_link_local_literal_is_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(GitInputError) as refused:
        check_repo_url(url)
    assert refused.value.path == "params.repoUrl"


@BOUNDED
@given(any_urls)
@example("https://evil.com#@127.0.0.1/x")
@example("https://127.0.0.1#@evil.com/x")
@example("https://user:hunter2@github.com/org/repo.git")
def test_an_accepted_url_is_public_has_no_password_and_an_allowed_scheme(url: str) -> None:
    try:
        checked = check_repo_url(url)
    except GitInputError as refused:
        assert "hunter2" not in refused.message
        return
    assert checked.scheme in ("https", "ssh"), "http:// only for the deployment's private hosts, none here"
    assert not url.startswith("-")
    if "://" in url:
        parts = urlsplit(url)
        assert parts.scheme.lower() in ("https", "ssh")
        assert parts.password is None, "a password is never accepted in a URL"
        for host in (parts.hostname, _host_as_another_parser_reads_it(url)):
            address = _as_address(host) if host else None
            assert address is None or not forbidden_address(str(address)), f"{url!r} reaches {address}"
    address = _as_address(checked.host)
    assert address is None or not forbidden_address(str(address)), f"{url!r} reaches {address}"
    assert checked.is_ip_literal == (address is not None)


@BOUNDED
@given(_url_around(st.one_of(FORBIDDEN_V4, FORBIDDEN_V6).flatmap(_spellings)))
def test_http_to_a_private_host_passes_only_when_that_host_is_listed(url: str) -> None:
    """The deployment's GitPrivateHosts lets ``127.0.0.1`` through; nothing else private rides along."""
    allowed = frozenset({"127.0.0.1", "localhost"})
    try:
        checked = check_repo_url(url, allowed)
    except GitInputError:
        return
    assert checked.host in allowed, f"{url!r} passed as {checked.host!r}"
