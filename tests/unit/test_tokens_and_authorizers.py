"""Bearer tokens and the two authorizers: only a valid HS256 token signed with the stage's secret lets a user in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from api import authorizer as rest_authorizer
from core import tokens
from websocket import authorizer as ws_authorizer

from .conftest import SECRET

REST_METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:api123/test/GET/jobs/abc"
WS_METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:ws456/test/$connect"

# The brief's test secret is short on purpose; PyJWT warns about it on every use.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def token(claims: dict[str, Any] | None = None, *, key: str = SECRET, drop: tuple[str, ...] = ()) -> str:
    payload: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 300, "iat": int(time.time())}
    payload.update(claims or {})
    for name in drop:
        payload.pop(name)
    return jwt.encode(payload, key, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None = SECRET.encode()) -> str:
    """A JWT built by hand, so its header can claim anything."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return signing_input + "." + signature


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + 300, **extra}


def test_a_valid_token_names_its_user(aws):
    assert tokens.user_of(token()) == "alice"
    assert tokens.user_of(token({"sub": "carol.smith@example.com"})) == "carol.smith@example.com"


def test_the_bearer_prefix_is_accepted(aws):
    assert tokens.user_of("Bearer " + token()) == "alice"
    assert tokens.user_of("bearer " + token()) == "alice"


def rsa_token() -> str:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(), private_key, algorithm="RS256")


REFUSED = {
    "no token": lambda: None,
    "empty token": lambda: "",
    "bearer and nothing": lambda: "Bearer ",
    "not a jwt": lambda: "hello",
    "alg none": lambda: hand_made({"alg": "none", "typ": "JWT"}, claims(), key=None),
    "alg none, pyjwt": lambda: jwt.encode(claims(), None, algorithm="none"),
    "wrong key": lambda: token(key="another-secret-of-sufficient-length"),
    "expired": lambda: token({"exp": int(time.time()) - 1}),
    "not valid yet": lambda: token({"nbf": int(time.time()) + 120}),
    "no sub": lambda: token(drop=("sub",)),
    "no exp": lambda: token(drop=("exp",)),
    "sub with #": lambda: token({"sub": "alice#admin"}),
    "empty sub": lambda: token({"sub": ""}),
    "sub not a string": lambda: token({"sub": 42}),
    "oversized": lambda: token({"pad": "x" * 5000}),
    "rs256 header over an hmac signature": lambda: hand_made({"alg": "RS256", "typ": "JWT"}, claims()),
    "rs256 signed": rsa_token,
    "hs512": lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),
    "tampered payload": lambda: (lambda t: t.split(".")[0] + "." + _b64(json.dumps(claims(sub="bob")).encode()) + "."
                                  + t.split(".")[2])(token()),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_tokens_are_refused(aws, case):
    bad = REFUSED[case]()
    with pytest.raises(tokens.InvalidToken):
        tokens.user_of(bad)


def test_an_oversized_token_is_refused_before_it_is_decoded(aws, monkeypatch):
    def no_secret() -> str:
        raise AssertionError("an oversized token must not be verified")

    monkeypatch.setattr(tokens, "_secret", no_secret)
    big = "a" * (tokens.MAX_TOKEN_LENGTH + 1)
    with pytest.raises(tokens.InvalidToken, match="too long"):
        tokens.user_of(big)


def test_rest_authorizer_allows_the_whole_stage(aws, context):
    answer = rest_authorizer.handler(
        {"type": "TOKEN", "authorizationToken": "Bearer " + token(), "methodArn": REST_METHOD_ARN}, context
    )
    assert answer["principalId"] == "alice"
    assert answer["context"] == {"userId": "alice"}
    assert answer["policyDocument"]["Statement"] == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:api123/test/*/*",
        }
    ]


@pytest.mark.parametrize("header", [None, "", "Bearer nope", "Bearer " + "x" * 5000])
def test_rest_authorizer_refuses_with_unauthorized(aws, context, header):
    event = {"type": "TOKEN", "methodArn": REST_METHOD_ARN}
    if header is not None:
        event["authorizationToken"] = header
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        rest_authorizer.handler(event, context)


def test_rest_authorizer_refuses_an_expired_token(aws, context):
    expired = token({"exp": int(time.time()) - 5})
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        rest_authorizer.handler({"authorizationToken": expired, "methodArn": REST_METHOD_ARN}, context)


def test_websocket_authorizer_reads_the_query_string(aws, context):
    event = {"type": "REQUEST", "methodArn": WS_METHOD_ARN, "queryStringParameters": {"token": token({"sub": "bob"})}}
    answer = ws_authorizer.handler(event, context)
    assert answer["principalId"] == "bob"
    assert answer["context"] == {"userId": "bob"}
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == WS_METHOD_ARN


@pytest.mark.parametrize(
    "query",
    [None, {}, {"token": ""}, {"token": "garbage"}, {"other": "x"}],
)
def test_websocket_authorizer_refuses_a_missing_or_bad_token(aws, context, query):
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        ws_authorizer.handler({"type": "REQUEST", "methodArn": WS_METHOD_ARN, "queryStringParameters": query}, context)


def test_websocket_authorizer_refuses_another_stages_secret(aws, context):
    foreign = token(key="the-secret-of-another-stage-entirely")
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        ws_authorizer.handler({"methodArn": WS_METHOD_ARN, "queryStringParameters": {"token": foreign}}, context)


def test_the_secret_comes_from_ssm(aws):
    """Rotating the SSM parameter (after the cache expires) changes which tokens are accepted."""
    old = token()
    aws.client("ssm").put_parameter(
        Name=aws.env["TOKEN_SECRET_PARAMETER"], Value="rotated-secret", Type="SecureString", Overwrite=True
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    with pytest.raises(tokens.InvalidToken):
        tokens.user_of(old)
    assert tokens.user_of(token(key="rotated-secret")) == "alice"
