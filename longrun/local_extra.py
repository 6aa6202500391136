"""What ``pip install 'longrun[local]'`` adds, and the message a command prints when it is missing.

``pip install longrun`` is the command line and the API client against any stage: neither imports moto,
the SAM translator or the handlers' runtime. The local cloud (``longrun local up``, ``make demo``) and
``longrun worker build`` (the deployed worker run from a checkout) need the ``local`` extra of
pyproject.toml; they ask :func:`missing_message` first, so a user without it reads which command to run
instead of a traceback from deep inside a subprocess (most of the emulator imports moto lazily, in the
AWS endpoint's own process, so an ImportError would surface late and far from its cause).
"""

from __future__ import annotations

import importlib.util

INSTALL = "pip install 'longrun[local]'"

# Each requirement of the `local` extra (pyproject.toml) and the top-level modules that prove it installed.
# tests/unit/test_packaging.py checks that these are exactly the extra's requirements.
EMULATOR: dict[str, tuple[str, ...]] = {
    "moto": ("moto", "flask", "werkzeug"),  # moto[server]: the server mode needs flask and werkzeug
    "aws-sam-translator": ("samtranslator",),
    "aws-croniter": ("aws_croniter",),
    "PyYAML": ("yaml",),
}
# The handlers' own runtime (handlers/requirements.txt, less PyJWT which the CLI needs anyway): the local
# cloud's Lambda workers and `longrun worker build` run handlers/ in this Python.
HANDLERS_RUNTIME: dict[str, tuple[str, ...]] = {
    "aws-lambda-powertools": ("aws_lambda_powertools",),
    "aws-xray-sdk": ("aws_xray_sdk",),
    "jsonschema": ("jsonschema",),
}
LOCAL: dict[str, tuple[str, ...]] = {**EMULATOR, **HANDLERS_RUNTIME}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or a half-imported module without a spec
        return False


def missing(requirements: dict[str, tuple[str, ...]] = LOCAL) -> list[str]:
    """The requirements of ``requirements`` with a module that cannot be imported here."""
    return [name for name, modules in requirements.items() if not all(_importable(m) for m in modules)]


def missing_message(command: str, requirements: dict[str, tuple[str, ...]] = LOCAL) -> str | None:
    """None when ``command`` can run; otherwise one line naming what is missing and how to install it."""
    absent = missing(requirements)
    if not absent:
        return None
    return (
        f"{command} needs the local extra, and {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not "
        f"installed: run {INSTALL} "
        "(in a checkout: pip install -e '.[local]', which make demo and make test do)"
    )
