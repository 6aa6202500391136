"""git-flow's branch rules, in one place: what git-branch starts and git-merge finishes.

As the git-flow tools define them (``git flow init`` with its default prefixes): a feature starts
from ``develop`` and finishes into it; a release starts from ``develop`` and a hotfix from
``main``, and both finish into ``main`` with a tag of their name, merged back into ``develop``.
"""

from __future__ import annotations

from dataclasses import dataclass

MAIN = "main"
DEVELOP = "develop"


@dataclass(frozen=True)
class Kind:
    """One kind of git-flow branch: its prefix, the branch it starts from and the one it finishes into."""

    prefix: str
    starts_from: str
    finishes_into: str
    tags: bool  # a finish tags the result with the branch's name and merges it back into develop

    def branch(self, name: str) -> str:
        """``feature/<name>``, ``release/<name>`` or ``hotfix/<name>``."""
        return f"{self.prefix}/{name}"


KINDS: dict[str, Kind] = {
    "feature": Kind("feature", DEVELOP, DEVELOP, tags=False),
    "release": Kind("release", DEVELOP, MAIN, tags=True),
    "hotfix": Kind("hotfix", MAIN, MAIN, tags=True),
}

STARTS = tuple(f"{kind}-start" for kind in KINDS)
FINISHES = tuple(f"{kind}-finish" for kind in KINDS)


def kind_of(flow: str) -> Kind:
    """The kind a ``<kind>-start`` or ``<kind>-finish`` flow names (the schemas' enums list only these)."""
    kind, _, action = flow.partition("-")
    if kind not in KINDS or action not in ("start", "finish"):
        raise ValueError(f"not a git-flow action: {flow!r}")
    return KINDS[kind]
