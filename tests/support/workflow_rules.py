"""The workflows' house rules, as functions that list what breaks them (an empty list: none).

- Retry: every Task's ``Retry`` is a copy of one named policy of ``statemachines/retry-policies.json``
  (each retrier marked ``"Comment": "retry policy <Name>"``), or says why not in its first retrier's
  ``Comment`` (``"custom retry: <reason>"``).
- Notify: every machine ends through the states of ``statemachines/notify-states.json``.
- Errors: every ``ErrorEquals`` name is a class of the machine's error catalogue
  (``handlers/steps/<kind>/errors.py``, ``handlers/core/workflow_errors.py``) or a name AWS gives;
  every catalogue class a state's code raises (or a worker sends) is caught or retried by that
  state, or ends the execution on purpose (the catalogue's ``ENDS_EXECUTION``).

Everything is read from source (JSON, YAML, Python's ``ast``), never imported, so a planted copy of
the repository in a temporary directory is judged exactly as the repository is.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NOTIFY_RESOURCE = "${NotifyFunctionArn}"
CUSTOM_RETRY = "custom retry:"
POLICY_MARK = "retry policy "
MIN_REASON_CHARS = 20


# ------------------------------------------------------------------------------ machines
def machines(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    """``statemachines/<name>.asl.json`` by ``<name>``."""
    return {
        p.name.removesuffix(".asl.json"): json.loads(p.read_text())
        for p in sorted(repo.glob("statemachines/*.asl.json"))
    }


def states_of(
    states: dict[str, Any], within: tuple[dict[str, Any], ...] = ()
) -> Iterator[tuple[str, dict[str, Any], tuple]]:
    """Every state with the Map/Parallel states around it (whose Catch also takes its errors)."""
    for name, state in states.items():
        yield name, state, within
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from states_of(state[key]["States"], (*within, state))
        for branch in state.get("Branches", []):
            yield from states_of(branch["States"], (*within, state))


def retry_policies(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    return json.loads((repo / "statemachines" / "retry-policies.json").read_text())["Policies"]


def notify_fragment(repo: Path = REPO) -> dict[str, Any]:
    return json.loads((repo / "statemachines" / "notify-states.json").read_text())


# ------------------------------------------------------------------------------ 1. Retry policies
def policy_of(retry: list[dict[str, Any]], policies: dict[str, dict[str, Any]]) -> str | None:
    """The name of the policy ``retry`` is a copy of, if any."""
    return next((name for name, policy in policies.items() if retry == policy["Retry"]), None)


def catalogue_problems(policies: dict[str, dict[str, Any]]) -> list[str]:
    """Each policy says why its numbers and marks its retriers; States.ALL stands alone and last (ASL)."""
    problems = []
    for name, policy in policies.items():
        if len(policy.get("Why", "")) < MIN_REASON_CHARS or not policy.get("UseFor"):
            problems.append(f"policy {name}: say why its numbers (Why) and where it is for (UseFor)")
        retry = policy.get("Retry") or []
        if not retry:
            problems.append(f"policy {name}: no retrier")
        for i, retrier in enumerate(retry):
            if retrier.get("Comment") != POLICY_MARK + name:
                problems.append(f'policy {name}: retrier {i} must carry "Comment": "{POLICY_MARK}{name}"')
            if "States.ALL" in retrier.get("ErrorEquals", []) and (
                len(retrier["ErrorEquals"]) > 1 or i != len(retry) - 1
            ):
                problems.append(f"policy {name}: States.ALL must be alone in the last retrier")
    return problems


def retry_problems(machine: str, definition: dict[str, Any], policies: dict[str, dict[str, Any]]) -> list[str]:
    """Every Task (and Map/Parallel with a Retry) retries by a named policy, or says why not."""
    problems = []
    for name, state, _ in states_of(definition["States"]):
        if state["Type"] not in {"Task", "Map", "Parallel"}:
            continue
        retry = state.get("Retry")
        if retry is None:
            if state["Type"] == "Task":
                problems.append(f"{machine}/{name}: a Task without Retry (give it a policy of retry-policies.json)")
            continue
        if policy_of(retry, policies) is not None:
            continue
        first = (retry[0].get("Comment") or "") if retry else ""
        if first.startswith(CUSTOM_RETRY) and len(first[len(CUSTOM_RETRY) :].strip()) >= MIN_REASON_CHARS:
            continue
        claimed = first.removeprefix(POLICY_MARK) if first.startswith(POLICY_MARK) else None
        why = (
            f"says it is policy {claimed} but differs from retry-policies.json"
            if claimed in policies
            else f"is none of the named policies ({', '.join(sorted(policies))})"
        )
        problems.append(
            f"{machine}/{name}: its Retry {why}; copy a policy, or start its first retrier's Comment with "
            f"{CUSTOM_RETRY!r} and the reason"
        )
    return problems


def policy_users(all_machines: dict[str, dict[str, Any]], policies: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Policy name -> the states that use it (``machine/state``)."""
    users: dict[str, list[str]] = {name: [] for name in policies}
    for machine, definition in all_machines.items():
        for name, state, _ in states_of(definition["States"]):
            policy = policy_of(state.get("Retry") or [], policies)
            if policy:
                users[policy].append(f"{machine}/{name}")
    return users


# ------------------------------------------------------------------------------ 2. notify states
def _without(state: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    state = copy.deepcopy(state)
    for path in paths:
        *parents, last = path.split(".", 1) if path.startswith("Parameters.") else [path]
        target = state.get(parents[0], {}) if parents else state
        if isinstance(target, dict):
            target.pop(last, None)
    return state


def notify_problems(machine: str, definition: dict[str, Any], fragment: dict[str, Any]) -> list[str]:
    """The machine's notify Tasks and Fail states are the fragment's, but for what MachineMayChange lists."""
    states, shared = definition["States"], fragment["States"]
    problems = [
        f"{machine}: no state {name} (notify-states.json)" for name in fragment["Required"] if name not in states
    ]
    by_status = {s["Parameters"]["status"]: n for n, s in shared.items() if s["Type"] == "Task"}
    by_error = {s["Error"]: n for n, s in shared.items() if s["Type"] == "Fail"}
    free = list(fragment["MachineMayChange"])
    for name, state, _ in states_of(states):
        if state.get("Resource") == NOTIFY_RESOURCE:
            ref = by_status.get((state.get("Parameters") or {}).get("status"))
        elif state["Type"] == "Fail":
            ref = by_error.get(state.get("Error"))
        else:
            continue
        if ref is None:
            problems.append(f"{machine}/{name}: a notify or Fail state that notify-states.json does not define")
            continue
        # The fragment's own names are the fragment's states; only a second state of a kind may read elsewhere.
        may_change = [p for p in free if not p.startswith("Parameters.")] if name == ref else free
        if name in shared and name != ref:
            problems.append(f"{machine}/{name}: named as notify-states.json's {name} but is its {ref}")
        elif _without(state, may_change) != _without(shared[ref], may_change):
            problems.append(
                f"{machine}/{name}: differs from notify-states.json's {ref} (beyond {', '.join(may_change)})"
            )
    return problems


# ------------------------------------------------------------------------------ 3. error catalogues
@dataclass
class Catalogue:
    """One ``errors.py`` read from source: the names it defines and declares."""

    module: str
    machines: tuple[str, ...] = ()
    errors: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)
    ends_execution: set[str] = field(default_factory=set)
    workers: tuple[str, ...] = ()
    constants: dict[str, Any] = field(default_factory=dict)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def read_catalogue(path: Path, module: str) -> Catalogue:
    tree = ast.parse(path.read_text())
    found = Catalogue(module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found.classes.add(node.name)
        target = (
            node.targets[0]
            if isinstance(node, ast.Assign)
            else node.target
            if isinstance(node, ast.AnnAssign)
            else None
        )
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        if target.id == "ERRORS":
            found.errors = _names(node.value)
        elif target.id == "ENDS_EXECUTION":
            found.ends_execution = {k.id for k in node.value.keys if isinstance(k, ast.Name)}  # type: ignore[attr-defined]
        elif target.id == "MACHINES":
            found.machines = ast.literal_eval(node.value)
        elif target.id == "WORKERS":
            found.workers = ast.literal_eval(node.value)
        else:
            value = node.value
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id in {"frozenset", "set"}
            ):
                value = value.args[0] if value.args else ast.Set(elts=[])
            with contextlib.suppress(ValueError):  # not a literal: not a declaration the rules read
                found.constants[target.id] = ast.literal_eval(value)
    return found


def catalogues(repo: Path = REPO) -> dict[str, Catalogue]:
    """Every workflow's catalogue (``handlers/steps/<kind>/errors.py``) by module name."""
    return {
        f"steps.{p.parent.name}.errors": read_catalogue(p, f"steps.{p.parent.name}.errors")
        for p in sorted((repo / "handlers" / "steps").glob("*/errors.py"))
    }


def shared_catalogue(repo: Path = REPO) -> Catalogue:
    return read_catalogue(repo / "handlers" / "core" / "workflow_errors.py", "core.workflow_errors")


def _module_file(repo: Path, module: str) -> Path | None:
    base = repo / "handlers" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(repo: Path, module: str, tree: ast.Module) -> Iterator[str]:
    """The modules of steps/ and workers/ that ``module`` imports (a package's modules too, for ``from p import m``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in {"steps", "workers"}:
            yield node.module
            for alias in node.names:
                if _module_file(repo, f"{node.module}.{alias.name}"):
                    yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] in {"steps", "workers"})


def reachable(repo: Path, roots: list[str]) -> set[str]:
    """``roots`` and every steps/ or workers/ module they import, transitively (a package: all its modules)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(repo, module)
        if path is None or module.endswith(".errors"):  # a catalogue defines errors, it raises none
            continue
        seen.add(module)
        if path.name == "__init__.py" and module in roots:
            todo += [f"{module}.{p.stem}" for p in path.parent.glob("*.py") if p.stem != "__init__"]
        todo += list(_imports(repo, module, ast.parse(path.read_text())))
    return seen


def _is_builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException)


def raised_names(repo: Path, module: str, known: set[str], worker: bool = False) -> dict[str, str]:
    """Error class name -> where, for what ``module`` raises (a worker: also sends, i.e. names from a catalogue)."""
    path = _module_file(repo, module)
    assert path is not None, module
    tree = ast.parse(path.read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = (
                target.attr
                if isinstance(target, ast.Attribute)
                else target.id
                if isinstance(target, ast.Name)
                else None
            )
            if name and name[0].isupper() and not _is_builtin_exception(name):
                found.setdefault(name, f"{module}:{node.lineno}")
        elif worker and isinstance(node, ast.Name) and node.id in known:
            found.setdefault(node.id, f"{module}:{node.lineno} (sent)")
        elif worker and isinstance(node, ast.Constant) and node.value in known:
            found.setdefault(f"'{node.value}'", f"{module}:{node.lineno}")
    return found


def core_imports(repo: Path, module: str) -> set[str]:
    """The core modules ``module`` imports (``from core import locks``, ``from core.steps import job_step``)."""
    path = _module_file(repo, module)
    assert path is not None, module
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "core":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if _module_file(repo, f"{node.module}.{a.name}")}
    return found


def raised_by_core_problems(repo: Path, shared: Catalogue) -> list[str]:
    """The core modules RAISED_BY_CORE lists raise no other catalogue error than it says."""
    problems = []
    known = set(shared.errors)
    for module, declared in shared.constants.get("RAISED_BY_CORE", {}).items():
        if _module_file(repo, module) is None:
            problems.append(f"core.workflow_errors: RAISED_BY_CORE names {module}, which does not exist")
            continue
        for error, where in raised_names(repo, module, known).items():
            if error not in declared:
                problems.append(f"{where}: raises {error}; add it to RAISED_BY_CORE[{module!r}]")
    return problems


def _template(repo: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, errors = decode(str(repo / "infra" / "template.yaml"))
    assert not errors, errors
    return decoded


def state_handlers(repo: Path = REPO) -> dict[str, dict[str, str]]:
    """Machine -> ``${Placeholder}`` of each Lambda Resource -> the handler module the template wires to it."""
    resources = _template(repo)["Resources"]
    out: dict[str, dict[str, str]] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::StateMachine" or not isinstance(props.get("DefinitionUri"), str):
            continue
        machine = Path(props["DefinitionUri"]).name.removesuffix(".asl.json")
        wired = out.setdefault(machine, {})
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            if isinstance(value, dict) and "Fn::GetAtt" in value:
                target, attribute = (
                    value["Fn::GetAtt"] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")
                )
                handler = resources.get(target, {}).get("Properties", {}).get("Handler")
                if (
                    resources.get(target, {}).get("Type") == "AWS::Serverless::Function"
                    and attribute == "Arn"
                    and handler
                ):
                    wired["${" + key + "}"] = handler.rsplit(".", 1)[0]
    return out


def error_problems(repo: Path = REPO) -> list[str]:
    """(a) ErrorEquals names are catalogue classes; (b) what a state's code raises or sends is caught, or expected."""
    shared = shared_catalogue(repo)
    aws_names = set(shared.constants.get("LAMBDA_SERVICE_ERRORS", ()))
    aws_names |= set(shared.constants.get("SDK_SERVICE_ERRORS", ()))
    served: dict[str, Catalogue] = {}
    problems = []
    for catalogue in catalogues(repo).values():
        if not catalogue.machines:
            problems.append(f"{catalogue.module}: MACHINES names no state machine")
        for orphan in sorted(catalogue.classes - catalogue.errors):
            problems.append(f"{catalogue.module}: class {orphan} is not in ERRORS")
        for stray in sorted(catalogue.ends_execution - catalogue.errors - shared.errors):
            problems.append(f"{catalogue.module}: ENDS_EXECUTION names {stray}, which is not in ERRORS")
        for machine in catalogue.machines:
            if machine in served:
                problems.append(f"{machine}: served by both {served[machine].module} and {catalogue.module}")
            served[machine] = catalogue
    problems += raised_by_core_problems(repo, shared)
    raised_by_core: dict[str, tuple[str, ...]] = shared.constants.get("RAISED_BY_CORE", {})
    handlers = state_handlers(repo)
    for machine, definition in machines(repo).items():
        catalogue = served.get(machine)
        if catalogue is None:
            problems.append(f"{machine}: no handlers/steps/<kind>/errors.py names it in MACHINES")
            continue
        known = catalogue.errors | shared.errors
        for name, state, within in states_of(definition["States"]):
            names = {n for r in state.get("Retry", []) + state.get("Catch", []) for n in r["ErrorEquals"]}
            for unknown in sorted(n for n in names if not n.startswith("States.") and n not in known | aws_names):
                problems.append(f"{machine}/{name}: ErrorEquals {unknown!r} is no class of {catalogue.module} "
                                "or core.workflow_errors")  # fmt: skip
            if state["Type"] != "Task":
                continue
            resource = state.get("Resource", "")
            if resource in handlers.get(machine, {}):
                raised = {}
                for module in reachable(repo, [handlers[machine][resource]]):
                    raised |= raised_names(repo, module, known)
                    for core in core_imports(repo, module) & set(raised_by_core):
                        raised |= {e: f"{core} (imported by {module})" for e in raised_by_core[core] if e not in raised}
            elif resource.endswith(".waitForTaskToken") and name not in catalogue.constants.get("CLAIMED_ONLY", ()):
                # CLAIMED_ONLY (optional): callback states a worker only claims with SendTaskSuccess.
                raised = {}
                for module in reachable(repo, list(catalogue.workers)):
                    raised |= raised_names(repo, module, known, worker=True)
            else:
                continue
            taken = names | {n for outer in within for c in outer.get("Catch", []) for n in c["ErrorEquals"]}
            catches_all = bool(taken & {"States.ALL", "States.TaskFailed"})
            for error, where in sorted(raised.items()):
                if error.startswith("'"):
                    problems.append(f"{where}: names the error {error} by a string; use the catalogue's class")
                elif error not in known:
                    problems.append(f"{where}: raises {error}, which is in no catalogue of {machine}")
                elif not catches_all and error not in taken and error not in catalogue.ends_execution:
                    problems.append(f"{machine}/{name}: {error} ({where}) is neither caught nor retried there, "
                                    f"nor in {catalogue.module}'s ENDS_EXECUTION")  # fmt: skip
    return problems
