"""Generated requests against the local REST API, judged by ``schemas/openapi.json``.

The hand-written conformance test (tests/e2e/test_openapi_conformance.py) checks the calls we
thought of; schemathesis writes the ones we did not: every operation of the document gets valid
and invalid path ids, queries, headers and bodies, sent with a real token through the local
REST front, authorizer and API Lambda. Each response must be no 5xx, a status the operation
documents, ``application/json``, and a body (and headers) that match the documented schema.

Bounded for CI: a fixed number of cases per operation, derandomized (the same cases every run,
so a failure here is reproducible with ``pytest -k``), no example database, no stateful phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from longrun.tokens import make_token

DOCUMENT = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
CASES_PER_OPERATION = 150  # x 8 operations: 1,200 cases; about a minute on 2 cores
MINIMUM_CASES = 1000
USER = "schemathesis-user"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

schema = schemathesis.openapi.from_path(DOCUMENT)
# Both valid requests and requests that break the document (wrong types, missing fields, bad JSON
# shapes): the second half is where a handler that forgot a check answers 500.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

SENT: dict[str, int] = {}


@pytest.fixture(scope="module")
def auth_headers() -> dict[str, str]:
    """A valid token of a user of its own, so generated jobs never touch other tests' users."""
    return {"Authorization": f"Bearer {make_token(USER, ttl=3600)}"}


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
def test_every_generated_request_gets_a_documented_answer(case: Any, local_cloud: Any, auth_headers: dict) -> None:
    headers = {**(case.headers or {}), **auth_headers}
    SENT[case.operation.label] = SENT.get(case.operation.label, 0) + 1
    case.call_and_validate(base_url=local_cloud.api, headers=headers, checks=CHECKS, timeout=30)


def test_at_least_a_thousand_cases_were_sent_to_every_operation() -> None:
    """The generator really ran: over 1,000 requests, and every operation of the document had its share."""
    operations = {
        f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }  # fmt: skip
    if not SENT:
        pytest.skip("the generated cases did not run in this session (selected out)")
    assert set(SENT) == operations, f"operations without cases: {operations - set(SENT)}"
    assert sum(SENT.values()) >= MINIMUM_CASES, SENT
    assert min(SENT.values()) >= 50, SENT
