"""asl-validator, the judge of state machine definitions, for the tests and the local Step Functions API.

Step Functions checks every definition it is given to ``CreateStateMachine`` and
``UpdateStateMachine`` and answers ``InvalidDefinition`` to one that breaks the Amazon States
Language ("Step Functions will implicitly perform the same syntax check when you invoke
CreateStateMachine and UpdateStateMachine":
https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html).
moto's parser checks much less: it accepted a state machine whose inline Map and Distributed Map
each named a state ``CopyBatch``, which CloudFormation then rolled back. asl-validator (npm, pinned
in ``package.json``, installed by ``make``/``npm ci`` into ``node_modules/``) knows those rules,
so both the tests (``tests/infra/test_asl_validator.py``) and the local cloud
(:func:`longrun.local.stepfunctions.patches._definitions_judged_as_on_aws`) ask it.

Starting node and loading the validator costs about a second, so one node process answers every
definition of a process (one JSON line in, one out), and each verdict is kept on disk under the
user's cache directory, keyed by the definition's sha256 and the validator's version: a restart of
the local cloud asks node nothing for definitions it has judged before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("longrun.local.asl_validator")

REPO_ROOT = Path(__file__).resolve().parents[3]
MODULE_DIR = REPO_ROOT / "node_modules" / "asl-validator"
INSTALL_HINT = "run `make` (or `npm ci` at the repository's root) to install it"
# Where the rules are written down: AWS's list of what CreateStateMachine refuses (its diagnostics'
# codes; DUPLICATE_STATE_NAME: "The same state name appears more than once"). The ASL specification
# adds why Map processors count: "State names MUST be unique within the scope of the whole state
# machine" (https://states-language.net/spec.html).
DOC = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinitionDiagnostic.html"

# Reads {"definition": "<ASL text>"} lines, answers {"isValid": bool, "errors": [...]} lines. The
# validator's checks of paths and of Resource ARNs are on, as Step Functions checks both.
_SERVER = r"""
const validate = require(process.argv[1]);
const readline = require("readline");
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let answer;
  try {
    const definition = JSON.parse(JSON.parse(line).definition);
    const { isValid, errors } = validate(definition, { checkPaths: true, checkArn: true });
    answer = { isValid, errors };
  } catch (e) {
    const error = { "Error code": "INVALID_JSON_DESCRIPTION", Message: String(e.message || e) };
    answer = { isValid: false, errors: [error] };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
"""


# The local cloud's endpoints listen on ports drawn at each start, and a queue URL in a definition
# (the build's ${BuildQueueUrl}) names one: the port changes no verdict, so it is no part of the key.
_LOCAL_PORT = re.compile(r"(https?://(?:127\.0\.0\.1|localhost|\[::1\])):\d+")


class AslValidatorUnavailable(RuntimeError):
    """node or the pinned asl-validator is not installed: no definition can be judged."""


@dataclass(frozen=True)
class Finding:
    """One rule a definition breaks: the validator's code (e.g. ``DUPLICATE_STATE_NAMES``) and where."""

    code: str
    message: str
    state: str | None = None


@dataclass(frozen=True)
class Verdict:
    findings: tuple[Finding, ...]

    @property
    def valid(self) -> bool:
        return not self.findings

    def describe(self) -> str:
        return "; ".join(f"{f.code}: {f.message}" for f in self.findings)


def problem() -> str | None:
    """Why no definition can be judged here (None when node and asl-validator are installed)."""
    if shutil.which("node") is None:
        return f"node is not installed, so asl-validator cannot judge state machine definitions; {INSTALL_HINT}"
    if not (MODULE_DIR / "package.json").is_file():
        return f"asl-validator is not installed in {MODULE_DIR.parent}; {INSTALL_HINT}"
    return None


def version() -> str:
    return str(json.loads((MODULE_DIR / "package.json").read_text(encoding="utf-8"))["version"])


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "longrun" / f"asl-validator-{version()}"


_STATE_IN_MESSAGE = (
    re.compile(r'^State "(?P<state>[^"]+)"'),  # "State "X" MUST contain exactly one of ..."
    re.compile(r"^State (?P<state>.+) is not reachable$"),
    re.compile(r": (?P<state>[^:]+)$"),  # "A state with this name already exists: X", "... target: X"
)


def _state_of(error: dict[str, Any]) -> str | None:
    """The state an error names: from its JSON pointer (schema errors) or its message."""
    pointer = (error.get("schemaError") or {}).get("instancePath")
    if pointer:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")]
        states = [parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "States"]
        return states[-1] if states else None
    for pattern in _STATE_IN_MESSAGE:
        match = pattern.search(str(error.get("Message", "")))
        if match:
            return match.group("state")
    return None


def _verdict(answer: dict[str, Any]) -> Verdict:
    findings = tuple(
        Finding(str(e.get("Error code", "INVALID_DEFINITION")), str(e.get("Message", "")), _state_of(e))
        for e in answer.get("errors") or []
    )
    if not findings and not answer.get("isValid"):
        findings = (Finding("INVALID_DEFINITION", "asl-validator found the definition invalid"),)
    return Verdict(findings)


_REFUSAL = "Invalid State Machine Definition: "
_FINDING = re.compile(r"'(?P<code>[A-Z_]+): (?P<text>.*?)'(?: at state (?P<state>[^;]+))?(?:; |$)")


def refusal_message(verdict: Verdict) -> str:
    """What the emulated ``CreateStateMachine`` answers with ``InvalidDefinition``: every rule broken, and where."""
    return _REFUSAL + "; ".join(
        f"'{f.code}: {f.message}'" + (f" at state {f.state}" if f.state else "") for f in verdict.findings
    )


def first_finding(message: str) -> Finding | None:
    """The first rule named by a :func:`refusal_message` (None for another ``InvalidDefinition``, e.g. moto's)."""
    match = _FINDING.search(message.removeprefix(_REFUSAL)) if message.startswith(_REFUSAL) else None
    return Finding(match["code"], match["text"], match["state"]) if match else None


def as_aws_refused(resource: str, error: Exception) -> Exception | None:
    """The stack builder's view of a refused ``CreateStateMachine``: :class:`AwsRefused` naming resource, state, rule.

    ``None`` for an error that is no refusal of the definition (the caller re-raises it).
    """
    from botocore.exceptions import ClientError

    from longrun.local.refusals import AwsRefused

    if not isinstance(error, ClientError):
        return None
    code, message = error.response["Error"].get("Code"), str(error.response["Error"].get("Message", ""))
    if code == "ValidatorUnavailable":  # the local cloud cannot judge: it says so rather than accept
        return AslValidatorUnavailable(message)
    if code != "InvalidDefinition":
        return None
    finding = first_finding(message)
    if finding is None:  # refused by moto's own parser
        return AwsRefused(resource, "InvalidDefinition", message, doc=DOC)
    return AwsRefused(resource, finding.code, finding.message, state=finding.state, doc=DOC)


class AslValidator:
    """One node process running asl-validator, its verdicts cached on disk; safe to share across threads."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._node: subprocess.Popen[str] | None = None
        self._cache_dir = cache_dir

    def validate(self, definition: str) -> Verdict:
        """The verdict on a definition (ASL text, as ``CreateStateMachine`` takes it)."""
        missing = problem()
        if missing:
            raise AslValidatorUnavailable(missing)
        cache = self._cache_dir or _cache_dir()
        key = hashlib.sha256(_LOCAL_PORT.sub(r"\1:<port>", definition).encode()).hexdigest()
        cached = cache / f"{key}.json"
        try:
            return _verdict(json.loads(cached.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
        answer = self._ask(definition)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=cache, delete=False, suffix=".tmp", encoding="utf-8") as f:
                json.dump(answer, f)
            os.replace(f.name, cached)  # whole or not at all: another process may read it at once
        except OSError as e:  # a read-only home costs time, not correctness
            log.warning("could not cache an asl-validator verdict in %s: %s", cache, e)
        return _verdict(answer)

    def _ask(self, definition: str) -> dict[str, Any]:
        with self._lock:
            for attempt in (1, 2):  # a node that died (killed, out of memory) is started again once
                node = self._started()
                assert node.stdin is not None and node.stdout is not None
                try:
                    node.stdin.write(json.dumps({"definition": definition}) + "\n")
                    node.stdin.flush()
                    line = node.stdout.readline()
                except OSError:
                    line = ""
                if line:
                    return json.loads(line)
                self.close()
                if attempt == 2:
                    raise AslValidatorUnavailable(f"asl-validator (node) stopped answering; {INSTALL_HINT}")
        raise AssertionError("unreachable")

    def _started(self) -> subprocess.Popen[str]:
        if self._node is None or self._node.poll() is not None:
            self._node = subprocess.Popen(
                ["node", "-e", _SERVER, str(MODULE_DIR)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        return self._node

    def close(self) -> None:
        node, self._node = self._node, None
        if node is not None:
            if node.stdin is not None:
                node.stdin.close()
            try:
                node.wait(timeout=5)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


_shared: AslValidator | None = None
_shared_lock = threading.Lock()


def shared() -> AslValidator:
    """The process's one validator (one node process, started on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = AslValidator()
        return _shared
