"""The one registry of the local cloud's patches of moto (longrun/local/patches.py).

Installing patches moto for the whole process, so the full install runs in a child process, as the
AWS endpoint runs it; the refusals (an untested moto, a patch that replaces nothing, two patches on
one attribute) are checked here on the registry itself, before anything is patched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from typing import Any

import pytest

from longrun.local import patches
from longrun.local.patches import Patch, PatchNotInstalled, UntestedMoto
from tests.conftest import REPO

# Install twice in a fresh process, as the AWS endpoint does once: what each call installed, whether
# every declared attribute was replaced, and whether the second call changed anything.
_INSTALL_TWICE = textwrap.dedent(
    """
    import json, threading
    from longrun.local import patches

    declared = patches.registry()
    before = {t: patches.current(t) for p in declared for t in p.replaces}
    first = patches.install()
    after_first = {t: patches.current(t) for t in before}
    threads_first = sorted(t.name for t in threading.enumerate())
    second = patches.install()
    after_second = {t: patches.current(t) for t in before}
    print(json.dumps({
        "declared": [p.key for p in declared],
        "first": first,
        "second": second,
        "installed": sorted(patches.installed()),
        "not_replaced": [t for t in before if after_first[t] is before[t]],
        "replaced_again": [t for t in before if after_second[t] is not after_first[t]],
        "threads_first": threads_first,
        "threads_second": sorted(t.name for t in threading.enumerate()),
    }))
    """
)


@pytest.fixture(scope="module")
def installed_twice() -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, "-c", _INSTALL_TWICE], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_every_declared_patch_is_installed_and_replaces_what_it_declares(installed_twice: dict[str, Any]) -> None:
    assert installed_twice["first"] == installed_twice["declared"]
    assert installed_twice["installed"] == sorted(installed_twice["declared"])
    assert installed_twice["not_replaced"] == []


def test_a_second_install_installs_nothing_and_wraps_nothing_twice(installed_twice: dict[str, Any]) -> None:
    assert installed_twice["second"] == []
    assert installed_twice["replaced_again"] == []  # every patched attribute is the same object
    # The patches that start threads (the status events' outbox, EventBridge's deliveries and schedules)
    # started them once: the behaviour is not doubled.
    assert installed_twice["threads_second"] == installed_twice["threads_first"]
    assert installed_twice["threads_first"].count("execution-status-events") == 1


def test_every_patch_names_the_aws_behaviour_its_page_and_the_moto_gap() -> None:
    declared = patches.registry()
    assert len(declared) >= 15
    for patch in declared:
        assert patch.service in patches.SERVICES, patch.key
        assert len(patch.behaviour) > 30 and len(patch.gap) > 20, patch.key
        assert patch.doc.startswith("https://docs.aws.amazon.com/"), patch.key
        assert patch.replaces and all(":" in target for target in patch.replaces), patch.key
        assert patch.moto_issue is None or patch.moto_issue.startswith("https://github.com/getmoto/moto/")


def test_no_attribute_is_replaced_by_two_patches_and_the_order_is_declared() -> None:
    """moto's ``terminated`` was wrapped by two patches, in an order only a comment kept; now one composes both."""
    declared = patches.registry()
    targets = [target for patch in declared for target in patch.replaces]
    assert len(targets) == len(set(targets))
    order = [patch.key for patch in declared]
    (end,) = (p for p in declared if any(t.endswith("BaseExecutionWorkerCommunication.terminated") for t in p.replaces))
    assert set(end.after) == {"stepfunctions.executions-announce-their-status", "stepfunctions.redrive-execution"}
    assert all(order.index(key) < order.index(end.key) for key in end.after)


@pytest.mark.parametrize("version", ["5.2.4", "5.3.0", "6.0.0", "4.2.14"])
def test_an_untested_moto_is_refused_before_anything_is_patched(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", version)
    monkeypatch.setattr(patches, "registry", lambda: pytest.fail("the registry was read before the version check"))
    with pytest.raises(UntestedMoto) as refused:
        patches.install()
    assert f"moto {version} is installed" in str(refused.value)
    assert "moto>=5.2.5,<5.3" in str(refused.value)


def test_the_installed_moto_is_in_the_tested_range() -> None:
    patches.check_moto_version()  # what `make test` installs (pyproject.toml) is what the patches were tested with
    patches.check_moto_version("5.2.5")
    patches.check_moto_version("5.2.9.dev1")


def _fake_services(monkeypatch: pytest.MonkeyPatch, *declared: Patch) -> None:
    module = types.ModuleType("longrun.local.fake.patches")
    module.PATCHES = declared  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "longrun.local.fake.patches", module)
    monkeypatch.setattr(patches, "SERVICES", ("fake",))
    monkeypatch.setattr(patches, "_state", patches._State())


class _Target:
    value = "moto's"


def _fake(name: str, apply: Any, **kwargs: Any) -> Patch:
    return Patch(
        service="fake", name=name, behaviour="b" * 40, doc="https://docs.aws.amazon.com/x", gap="g" * 30,
        replaces=(f"{__name__}:_Target.value",), apply=apply, **kwargs,
    )  # fmt: skip


def test_a_patch_that_replaces_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_services(monkeypatch, _fake("does-nothing", lambda: None))
    with pytest.raises(PatchNotInstalled, match="did not replace"):
        patches.install()


def test_a_fake_patch_is_installed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def apply() -> None:
        calls.append("applied")
        monkeypatch.setattr(_Target, "value", "patched")

    _fake_services(monkeypatch, _fake("once", apply))
    assert patches.install() == ["fake.once"]
    assert patches.install() == []
    assert calls == ["applied"] and _Target.value == "patched"


def test_two_patches_on_one_attribute_or_an_unknown_dependency_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_services(monkeypatch, _fake("one", lambda: None), _fake("two", lambda: None))
    with pytest.raises(PatchNotInstalled, match="compose them"):
        patches.registry()
    _fake_services(monkeypatch, _fake("alone", lambda: None, after=("fake.missing",)))
    with pytest.raises(PatchNotInstalled, match="which no service declares"):
        patches.registry()
