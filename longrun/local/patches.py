"""The one way the local cloud changes moto: every patch declared with its service, installed here.

moto is the local cloud's AWS, and where it differs from AWS in a way longrun relies on (or costs
what AWS does not), the local cloud patches it. Each patch is a :class:`Patch` record in the
``patches`` module of the service it concerns (``longrun/local/<service>/patches.py``, listed in
:data:`SERVICES`), naming the AWS behaviour it supplies (with the AWS page that states it), the moto
gap it fills, and every moto attribute it replaces. :func:`install` is the only caller of the
patches' ``apply`` functions (the AWS endpoint calls it at start, see :mod:`longrun.local.aws_server`):

* it refuses a moto outside :data:`TESTED_MOTO` before it touches anything: the patches reach into
  moto's private modules, which any release may move;
* it installs in the declared order (a patch's ``after`` names the patches it builds on) and each
  patch once per process: a second call installs nothing and wraps nothing twice;
* it checks that each patch really replaced every attribute it declares, so a patch whose target
  moto renamed fails loudly instead of silently doing nothing.

Two patches may not replace the same attribute: where two behaviours meet in one moto method (an
execution's end is announced *and* serialized with redrives), one patch composes them.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The services whose ``longrun.local.<service>.patches`` module declares ``PATCHES``.
SERVICES = ("core", "dynamodb", "s3", "sqs", "stepfunctions", "events")
# The moto releases the patches were tested with: [first, end). A release outside is refused; widen the
# range only after `make test` passed with that release (pyproject.toml pins the same range).
TESTED_MOTO = ((5, 2, 5), (5, 3))
_MISSING = object()


class UntestedMoto(RuntimeError):
    """The installed moto is not one the patches were tested with."""


class PatchNotInstalled(RuntimeError):
    """A patch left an attribute it declares unchanged (moto moved it), or its declaration is inconsistent."""


@dataclass(frozen=True)
class Patch:
    """One change to moto: what AWS does, what moto does instead, and what in moto it replaces."""

    service: str  # the AWS service it concerns ("stepfunctions"); "core" for moto's server itself
    name: str  # unique within its service: "stop-aborts-task-token-waits"
    behaviour: str  # the AWS behaviour the patch supplies
    doc: str  # the AWS page that states that behaviour
    gap: str  # what moto does instead
    replaces: tuple[str, ...]  # "module:Owner.attribute" (or "module:attribute") that apply() sets
    apply: Callable[[], None]
    after: tuple[str, ...] = ()  # "service.name" of the patches this one builds on
    moto_issue: str | None = None  # moto's issue or pull request about the gap, where there is one

    @property
    def key(self) -> str:
        return f"{self.service}.{self.name}"


@dataclass
class _State:
    installed: dict[str, Patch] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()


def moto_version() -> str:
    import moto

    return str(moto.__version__)


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string ("5.2.5.dev3" → (5, 2, 5)); moto's versions are PEP 440."""
    match = re.match(r"^(\d+(?:\.\d+)*)", version)
    if match is None:
        raise UntestedMoto(f"moto {version!r}: not a version the local cloud can read")
    return tuple(int(part) for part in match.group(1).split("."))


def check_moto_version(version: str | None = None) -> None:
    """Refuse a moto release the patches were not tested with (see :data:`TESTED_MOTO`)."""
    version = moto_version() if version is None else version
    first, end = TESTED_MOTO
    if not first <= _release(version) < end:
        tested = f">={'.'.join(map(str, first))},<{'.'.join(map(str, end))}"
        raise UntestedMoto(
            f"moto {version} is installed, but the local cloud's patches of moto were tested with moto{tested} "
            f"only (longrun/local/patches.py); install that range: pip install 'moto[server]{tested}'"
        )


def registry() -> tuple[Patch, ...]:
    """Every declared patch, in install order (each after the patches it names in ``after``)."""
    declared: list[Patch] = []
    for service in SERVICES:
        module = importlib.import_module(f"longrun.local.{service}.patches")
        for patch in module.PATCHES:
            if patch.service != service:
                raise PatchNotInstalled(f"{patch.key} is declared in longrun/local/{service}/patches.py")
            declared.append(patch)
    by_key = {patch.key: patch for patch in declared}
    if len(by_key) != len(declared):
        raise PatchNotInstalled("two patches share a name")
    owners: dict[str, str] = {}
    for patch in declared:
        for target in patch.replaces:
            if target in owners:
                raise PatchNotInstalled(f"{target} is replaced by both {owners[target]} and {patch.key}: compose them")
            owners[target] = patch.key
    ordered: list[Patch] = []
    placing: set[str] = set()

    def place(patch: Patch) -> None:
        if patch in ordered:
            return
        if patch.key in placing:
            raise PatchNotInstalled(f"{patch.key}: its `after` goes round in a circle")
        placing.add(patch.key)
        for key in patch.after:
            if key not in by_key:
                raise PatchNotInstalled(f"{patch.key} comes after {key}, which no service declares")
            place(by_key[key])
        ordered.append(patch)

    for patch in declared:
        place(patch)
    return tuple(ordered)


def _owner_and_name(target: str) -> tuple[Any, str]:
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, name


def current(target: str) -> Any:
    """What ``target`` ("module:Owner.attribute") holds now: the class's own entry (a staticmethod stays one)."""
    owner, name = _owner_and_name(target)
    if isinstance(owner, type):
        return owner.__dict__.get(name, _MISSING)
    return getattr(owner, name, _MISSING)


def install() -> list[str]:
    """Install every declared patch not installed yet in this process; the keys of those installed now."""
    check_moto_version()
    with _state.lock:
        done: list[str] = []
        for patch in registry():
            if patch.key in _state.installed:
                continue
            before = {target: current(target) for target in patch.replaces}
            patch.apply()
            unchanged = [target for target, value in before.items() if current(target) is value]
            if unchanged:
                raise PatchNotInstalled(f"{patch.key} did not replace {', '.join(unchanged)} (moto moved it?)")
            _state.installed[patch.key] = patch
            done.append(patch.key)
        return done


def installed() -> dict[str, Patch]:
    """The patches installed in this process, by key."""
    return dict(_state.installed)
