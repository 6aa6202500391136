"""Forged and broken tokens, sent through the real fronts: the REST API's authorizer and WebSocket ``$connect``.

tests/unit/test_tokens_and_authorizers.py calls the authorizers in-process; this is the black-box
version, as an attacker meets them: every forgery gets ``401`` with the contract's error body over
REST (from the gateway response, never the API function), and is refused at the WebSocket
handshake (no connection, so no subscription). A genuine token passes both, so each refusal
below is the token's doing and not a broken front.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus

from longrun.tokens import local_secret, make_token
from tests.e2e.helpers import http, ws_connect
from tests.e2e.test_openapi_conformance import check

USER = "token-attack-victim"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": USER, "iat": now, "nbf": now, "exp": now + 600, **changes}
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker does (PyJWT refuses to sign some of these)."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(signature)


def _hs256(secret: bytes, claims: dict[str, Any], alg: str = "HS256") -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_PUBLIC_PEM = _RSA.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
_SECRET = local_secret().encode()

# name → a token that must never let anyone in.
ATTACKS: dict[str, Callable[[], str]] = {
    "alg none, no signature": lambda: _unsigned({"alg": "none", "typ": "JWT"}, _claims()),
    "alg None, no signature": lambda: _unsigned({"alg": "None"}, _claims()),
    "alg none, with the genuine signature kept": lambda: _unsigned(
        {"alg": "none"}, _claims(), base64.urlsafe_b64decode(make_token(USER).split(".")[2] + "==")
    ),
    "a wrong key": lambda: jwt.encode(_claims(), "not-the-secret-" * 3, algorithm="HS256"),
    "another stage's secret": lambda: jwt.encode(_claims(), local_secret() + "-prod", algorithm="HS256"),
    "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 5), local_secret(), algorithm="HS256"),
    "not yet valid (nbf in the future)": lambda: jwt.encode(
        _claims(nbf=int(time.time()) + 600), local_secret(), algorithm="HS256"
    ),
    "no exp": lambda: jwt.encode(_claims(exp=None), local_secret(), algorithm="HS256"),
    "missing sub": lambda: jwt.encode(_claims(sub=None), local_secret(), algorithm="HS256"),
    "sub not a string": lambda: _hs256(_SECRET, _claims(sub=42)),
    "sub that breaks a key (alice#bob)": lambda: jwt.encode(_claims(sub="alice#bob"), local_secret()),
    "empty sub": lambda: jwt.encode(_claims(sub=""), local_secret(), algorithm="HS256"),
    # Over the 4 KiB the authorizer takes, under the 8 KiB request line a WebSocket handshake may have:
    # the refusal is the authorizer's, not the web server's.
    "oversized (validly signed, 5 KB)": lambda: jwt.encode(_claims(pad="x" * 3600), local_secret(), algorithm="HS256"),
    "RS256 signed with an RSA key": lambda: jwt.encode(_claims(), _RSA, algorithm="RS256"),
    "HS256 signed with the RSA public key as secret": lambda: _hs256(_PUBLIC_PEM, _claims()),
    "HS512 signed with the real secret": lambda: jwt.encode(_claims(), local_secret(), algorithm="HS512"),
    "signature of another payload": lambda: ".".join(
        [*make_token("mallory").split(".")[:2], make_token(USER).split(".")[2]]
    ),
    "garbage": lambda: "not.a.jwt",
    "two parts": lambda: ".".join(make_token(USER).split(".")[:2]),
}


def test_a_genuine_token_passes_both_fronts(local_cloud: Any) -> None:
    """The control: the fronts let a good token in, so the refusals below are the tokens' doing."""
    assert http(local_cloud, "GET", "/jobs?limit=1", token=make_token(USER)).status_code == 200
    with ws_connect(local_cloud, token=make_token(USER)) as ws:
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_token_gets_401_over_rest(local_cloud: Any, attack: str) -> None:
    token = ATTACKS[attack]()
    for method, path, template in (
        ("GET", "/jobs", "/jobs"),
        ("POST", "/jobs", "/jobs"),
        ("GET", "/jobs/some-job", "/jobs/{jobId}"),
    ):
        body = {"json": {"type": "create-project", "params": {"name": "forged-x"}}} if method == "POST" else {}
        response = http(local_cloud, method, path, token=token, **body)
        assert response.status_code == 401, f"{attack}: {method} {path} answered {response.status_code}"
        assert response.json()["error"]["code"] == "Unauthorized"
        check(method, template, response)
        assert USER not in response.text and "mallory" not in response.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_forged_token_is_refused_at_websocket_connect(local_cloud: Any, attack: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(local_cloud, token=ATTACKS[attack]()).close()
    assert refused.value.response.status_code in (401, 403), refused.value.response.status_code


def test_no_token_at_all_is_refused_on_both_fronts(local_cloud: Any) -> None:
    response = http(local_cloud, "GET", "/jobs", user=None)
    assert response.status_code == 401 and response.json()["error"]["code"] == "Unauthorized"
    check("GET", "/jobs", response)
    with pytest.raises(InvalidStatus):
        ws_connect(local_cloud, token="").close()
