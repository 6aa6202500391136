"""``sam build`` of the template succeeds, and what it built is what Lambda will run.

The first step of a deploy is the SAM CLI's own build (``make deploy``, docs/deploy.md): it resolves
every ``CodeUri``/``ContentUri`` against the template's folder and pip-installs
``handlers/requirements.txt`` for the functions' runtime and architecture (python3.12 on arm64).
A path the local cloud accepts and SAM does not, or a requirement with no wheel for that platform,
fails here rather than at the first deploy. Without a container, ``sam build`` needs the runtime's
interpreter on PATH (https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-build.html);
this test finds python3.12 (pyenv's versions first, as on these machines) and skips, saying so,
only where there is none or the SAM CLI is not installed (``make sam-cli``).

The SAM CLI's cache (``--cached``) lives in .venv-sam, so that a second run rebuilds only what changed;
functions with the same code, runtime, architecture and ``Metadata`` are built once.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
SAM_ENV = REPO / ".venv-sam"
RUNTIME = "python3.12"


def find_sam() -> Path | None:
    """The SAM CLI of .venv-sam (``make sam-cli``), else one on PATH."""
    own = SAM_ENV / "bin" / "sam"
    if own.exists():
        return own
    found = shutil.which("sam")
    return Path(found) if found else None


def _runs(python: str) -> bool:
    try:
        answer = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
    except OSError:
        return False
    return answer.returncode == 0 and answer.stdout.strip() == "(3, 12)"


def find_python312() -> Path | None:
    """A python3.12 that runs: pyenv's installed versions first (its shim answers only when 3.12 is selected)."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        answer = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        roots.insert(0, answer.stdout.strip())
    candidates = [c for root in roots if root for c in sorted(glob.glob(f"{root}/versions/3.12*/bin/python3.12"))]
    candidates += [c for c in (shutil.which("python3.12"), "/usr/bin/python3.12", "/usr/local/bin/python3.12") if c]
    return next((Path(c) for c in candidates if _runs(c)), None)


def _loader() -> type[yaml.SafeLoader]:
    """A SafeLoader that reads CloudFormation's short-form intrinsics (``!Ref`` and the like) as None."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return Loader


def _template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_loader())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sam = find_sam()
    if sam is None:
        pytest.skip("the SAM CLI is not installed: `make sam-cli` installs it into .venv-sam")
    python = find_python312()
    if python is None:
        pytest.skip(f"no {RUNTIME} on this machine: `sam build` without a container needs the functions' runtime")
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    cache = SAM_ENV / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    started = time.monotonic()
    # cwd: the SAM CLI keeps its dependency folders (.aws-sam/deps) under the current directory.
    result = subprocess.run(
        [str(sam), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir),
         "--cached", "--cache-dir", str(cache), "--parallel"],
        cwd=SAM_ENV, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    took = time.monotonic() - started
    output = f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert result.returncode == 0, f"sam build failed after {took:.0f} s:\n{output}"
    print(f"sam build took {took:.0f} s")
    return build_dir


@pytest.mark.timeout(1600)
def test_sam_build_builds_every_function_with_its_handler_and_requirements(built):
    resources = _template()["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions
    requirements = [line.split(">")[0].split("[")[0].strip() for line in
                    (REPO / "handlers" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]  # fmt: skip
    modules = {"aws-lambda-powertools": "aws_lambda_powertools", "aws-xray-sdk": "aws_xray_sdk",
               "jsonschema": "jsonschema", "PyJWT": "jwt"}  # fmt: skip
    assert set(requirements) <= set(modules), f"a new requirement: name its module here ({requirements})"
    for name, resource in functions.items():
        code = built / name
        handler = resource["Properties"]["Handler"]
        module = handler.rpartition(".")[0].replace(".", "/")
        assert (code / f"{module}.py").is_file(), f"{name}: {module}.py not in the built package"
        for requirement in requirements:
            assert (code / modules[requirement]).is_dir(), f"{name}: {requirement} was not installed"


@pytest.mark.timeout(1600)
def test_sam_build_writes_the_deployable_template(built):
    deployed = yaml.load((built / "template.yaml").read_text(), Loader=_loader())
    resources = deployed["Resources"]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"]["CodeUri"] == name, f"{name} points at its built folder"
    layer = resources["SchemasLayer"]["Properties"]["ContentUri"]
    assert list((built / layer).rglob("*.json")), "the schemas layer holds the JSON Schemas"
