"""Scoped access: the steps act on a project's data only with credentials limited to that project.

Three parts, because no one tool proves the whole locally:

* the session policy (core/scoped.py) together with ``ProjectAccessRole``'s own policy from the
  template, judged by a real IAM policy evaluator, Principal Mapper's (NCC Group), which evaluates
  identity, session and resource policies with their conditions (``s3:prefix``,
  ``ForAllValues`` over ``dynamodb:LeadingKeys``) as AWS documents them;
* the role itself, in moto with its IAM enforcement on: what the role's own policy refuses, moto
  refuses. moto ignores session policies (and authorizes DynamoDB without a resource), which is
  why the first part exists;
* the handlers: every S3 and DynamoDB request a step makes on a project's data carries the
  credentials of the session moto's STS issued for that project, with that project's policy.
"""

from __future__ import annotations

import collections
import collections.abc
import copy
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from core import locks, projects, scoped, sync_requests
from steps.project import undo

from .conftest import ACCOUNT, REGION, FakeContext
from .test_create_project_steps import run_steps, state_of

# Principal Mapper 1.1.5 (its latest release) still imports Mapping from ``collections``, gone
# since Python 3.10 (fixed upstream, unreleased: nccgroup/PMapper#130, #139). Restore the aliases.
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from principalmapper.common import Node, Policy  # noqa: E402
from principalmapper.querying.local_policy_simulation import (  # noqa: E402
    ResourcePolicyEvalResult,
    resource_policy_authorization,
)
from principalmapper.querying.query_interface import local_check_authorization_full  # noqa: E402

A, B = "prj-0123456789abcdef", "prj-fedcba9876543210"
SCOPED_FUNCTIONS = {
    "WriteScaffoldFunction",
    "InitRepositoryFunction",
    "RecordProjectFunction",
    "UndoCreateProjectFunction",
    "GitCloneFunction",
    "GitMergeFunction",
    "GitPullFunction",
    "GitBranchFunction",
    "GitPushFunction",
    "SyncAcquireFunction",
    "SyncListFunction",
    "SyncCopyFunction",
    "SyncFinishFunction",
    "DeleteProjectMarkFunction",
    "DeleteProjectObjectsFunction",
    "DeleteProjectWorkspaceFunction",
    "DeleteProjectRecordsFunction",
}


# ------------------------------------------------------------------------------ the template
@pytest.fixture(scope="module")
def resolved(translated: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The template's resources with their intrinsics resolved, named as the unit stack names them."""
    from longrun.local.cloudformation.engine import StackBuilder

    builder = StackBuilder(
        copy.deepcopy(translated),
        stack_name="unit",
        region=REGION,
        parameters={"StageName": "test", "VpcId": "vpc-1", "SubnetIds": "subnet-a,subnet-b"},
        data_dir=tmp_path_factory.mktemp("stack"),
        websocket_management_base="https://example.invalid",
        # Names only, nothing created: a queue's URL needs an endpoint, no client is called.
        aws=lambda service: SimpleNamespace(meta=SimpleNamespace(endpoint_url=f"https://{service}.example.invalid")),
    )

    def resolve(value: Any) -> Any:
        return builder.resolver.resolve(copy.deepcopy(value))

    return resolve, builder.resources


@pytest.fixture(scope="module")
def role(resolved: Any) -> dict[str, Any]:
    resolve, resources = resolved
    props = resolve(resources["ProjectAccessRole"]["Properties"])
    props["Arn"] = resolve({"Fn::GetAtt": ["ProjectAccessRole", "Arn"]})
    props["BucketArn"] = resolve({"Fn::GetAtt": ["ProjectsBucket", "Arn"]})
    props["TableArn"] = resolve({"Fn::GetAtt": ["ProjectsTable", "Arn"]})
    props["JobsTableArn"] = resolve({"Fn::GetAtt": ["JobsTable", "Arn"]})
    return props


def policy_of(role: dict[str, Any], project_id: str) -> dict[str, Any]:
    """The session policy the handlers pass for ``project_id`` with this stack's names."""
    return scoped.session_policy(
        project_id,
        partition="aws",
        region=REGION,
        account=ACCOUNT,
        bucket=role["BucketArn"].split(":::", 1)[1],
        table=role["TableArn"].rsplit("/", 1)[1],
    )


def assumed_role_node(role: dict[str, Any]) -> Node:
    """``ProjectAccessRole`` as the evaluator sees a principal: its ARN and its own (inline) policies."""
    policies = [Policy(role["Arn"], p["PolicyName"], p["PolicyDocument"]) for p in role["Policies"]]
    return Node(
        role["Arn"], "AROAUNITPROJECTACCESS", policies, [], role["AssumeRolePolicyDocument"],
        None, 0, False, False, None, False, {},
    )  # fmt: skip


# What a request is: (action, resource, condition keys). ``obj``/``items`` build them.
def obj(role: dict[str, Any], action: str, key: str) -> tuple[str, str, dict[str, Any]]:
    return action, f"{role['BucketArn']}/{key}", {}


def listing(role: dict[str, Any], prefix: str | None, action: str = "s3:ListBucket") -> tuple[str, str, dict[str, Any]]:
    return action, role["BucketArn"], ({} if prefix is None else {"s3:prefix": prefix})


def items(role: dict[str, Any], action: str, *keys: str, table: str = "TableArn") -> tuple[str, str, dict[str, Any]]:
    return action, role[table], {"dynamodb:LeadingKeys": list(keys)}


def allowed(role: dict[str, Any], request: tuple[str, str, dict[str, Any]], session: dict | None) -> bool:
    action, resource, keys = request
    return local_check_authorization_full(assumed_role_node(role), action, resource, keys, session_policy=session)


def own_requests(role: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """What the steps do on project A's data: every one must be allowed."""
    return [
        obj(role, "s3:PutObject", f"projects/{A}/index.html"),
        obj(role, "s3:GetObject", f"projects/{A}/src/app.js"),
        obj(role, "s3:DeleteObject", f"projects/{A}/old.txt"),
        obj(role, "s3:DeleteObjectVersion", f"projects/{A}/old.txt"),
        obj(role, "s3:AbortMultipartUpload", f"projects/{A}/big.bin"),
        obj(role, "s3:GetObject", f"manifests/{A}.json"),
        obj(role, "s3:PutObject", f"manifests/{A}.json"),
        obj(role, "s3:PutObject", f"artifacts/{A}/{'0' * 32}/dist/app.js"),  # the build worker's
        listing(role, f"projects/{A}/"),
        listing(role, f"projects/{A}/src/"),
        listing(role, f"projects/{A}/", "s3:ListBucketVersions"),
        items(role, "dynamodb:GetItem", f"project#{A}"),
        items(role, "dynamodb:PutItem", f"project#{A}"),
        items(role, "dynamodb:DeleteItem", f"project#{A}"),
        items(role, "dynamodb:PutItem", f"lock#{A}"),
        items(role, "dynamodb:UpdateItem", f"lock#{A}"),
        items(role, "dynamodb:GetItem", f"syncreq#{A}"),
        items(role, "dynamodb:DeleteItem", f"syncreq#{A}"),
    ]


def foreign_requests(role: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Another project's data, and what is nobody's project: every one must be denied."""
    return other_project_requests(role) + nobodys_requests(role)


def other_project_requests(role: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Project B's data, or names that look like A's: the role allows them, the session policy must not."""
    return [
        obj(role, "s3:GetObject", f"projects/{B}/src/app.js"),
        obj(role, "s3:PutObject", f"projects/{B}/index.html"),
        obj(role, "s3:DeleteObjectVersion", f"projects/{B}/index.html"),
        obj(role, "s3:GetObject", f"projects/{A}0/x.txt"),  # a project whose id starts like A's
        obj(role, "s3:GetObject", f"projects/{A}"),  # no object of A is the bare prefix
        obj(role, "s3:GetObject", f"manifests/{B}.json"),
        obj(role, "s3:PutObject", f"manifests/{B}.json"),
        obj(role, "s3:PutObject", f"artifacts/{B}/{'0' * 32}/dist/app.js"),
        listing(role, f"projects/{B}/"),
        listing(role, "projects/"),
        listing(role, f"projects/{A}0/"),
        listing(role, f"projects/{B}/", "s3:ListBucketVersions"),
        items(role, "dynamodb:GetItem", f"project#{B}"),
        items(role, "dynamodb:PutItem", f"lock#{B}"),
        items(role, "dynamodb:DeleteItem", f"syncreq#{B}"),
        items(role, "dynamodb:GetItem", f"project#{A}", f"project#{B}"),  # every key must be A's
    ]


def nobodys_requests(role: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """What is no project's data: the role's own policy refuses it, whatever the session policy says."""
    return [
        obj(role, "s3:GetObject", "sync/0123/batches/000001.json"),  # a job's work files
        obj(role, "s3:GetObject", "static/index.html"),
        obj(role, "s3:PutObject", "index.html"),  # the bucket root
        listing(role, ""),
        listing(role, None),  # the bucket root, no prefix at all
        ("s3:DeleteBucket", role["BucketArn"], {}),
        ("s3:PutBucketPolicy", role["BucketArn"], {}),
        items(role, "dynamodb:DeleteItem", "name#alice#demo"),  # a user's name reservation
        items(role, "dynamodb:UpdateItem", "quota#alice"),
        ("dynamodb:Scan", role["TableArn"], {}),
        items(role, "dynamodb:Query", f"project#{A}"),
        items(role, "dynamodb:DeleteTable", f"project#{A}"),
        items(role, "dynamodb:GetItem", A, table="JobsTableArn"),  # another table
    ]


# ------------------------------------------------------------------------------ (a) the session policy
def test_the_session_policy_allows_the_projects_data(role: dict[str, Any]) -> None:
    session = policy_of(role, A)
    refused = [r for r in own_requests(role) if not allowed(role, r, session)]
    assert not refused


def test_the_session_policy_denies_another_projects_data(role: dict[str, Any]) -> None:
    session = policy_of(role, A)
    let_in = [r for r in foreign_requests(role) if allowed(role, r, session)]
    assert not let_in


def test_it_is_the_session_policy_that_keeps_another_project_out(role: dict[str, Any]) -> None:
    """Without it the role reaches every project (so the denials above are the session policy's),
    and a session policy cannot give more than the role: B's session reaches B, not A."""
    other = [
        obj(role, "s3:GetObject", f"projects/{B}/src/app.js"),
        listing(role, f"projects/{B}/"),
        items(role, "dynamodb:PutItem", f"lock#{B}"),
        obj(role, "s3:PutObject", f"manifests/{B}.json"),
    ]
    assert all(allowed(role, r, None) for r in other)
    assert all(allowed(role, r, policy_of(role, B)) for r in other)
    assert not any(allowed(role, r, policy_of(role, B)) for r in own_requests(role))
    # What is no project's data the role refuses by itself, even with a session policy that asked for it.
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"],
                                                          "Resource": "*"}]}  # fmt: skip
    assert not any(allowed(role, r, everything) for r in nobodys_requests(role))


def test_moto_evaluator_agrees_on_object_resources(role: dict[str, Any]) -> None:
    """A second evaluator, moto's (no conditions, so only the object statements), gives the same answers."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    session = json.dumps(policy_of(role, A))
    for action, resource, keys in own_requests(role) + foreign_requests(role):
        if keys or not resource.startswith(role["BucketArn"] + "/"):
            continue
        ours = allowed(role, (action, resource, keys), json.loads(session))
        theirs = IAMPolicy(session).is_action_permitted(action, resource) == PermissionResult.PERMITTED
        assert ours == theirs, (action, resource)


def test_the_session_policy_fits_and_names_the_keys_the_code_writes(role: dict[str, Any]) -> None:
    # STS refuses a session policy over 2,048 characters: a long project id and this stack's names fit.
    packed = json.dumps(policy_of(role, "prj-" + "f" * 40), separators=(",", ":"))
    assert len(packed) < 2048
    keys = [projects.project_key(A)["pk"], locks._key(A)["pk"], sync_requests._key(A)["pk"]]
    assert scoped.item_keys(A) == keys


def test_only_the_steps_roles_may_assume_the_project_role(resolved: Any, role: dict[str, Any]) -> None:
    """The trust policy, judged by the same evaluator: the steps' roles, and no other function's."""
    resolve, resources = resolved
    trust = role["AssumeRolePolicyDocument"]
    function_roles = {
        name: resolve({"Fn::GetAtt": [name + "Role", "Arn"]})
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and name + "Role" in resources
    }
    assert set(function_roles) >= SCOPED_FUNCTIONS

    def may_assume(arn: str) -> bool:
        node = Node(arn, "AROAFN", [], [], {"Version": "2012-10-17", "Statement": []}, None, 0, False, False, None,
                    False, {})  # fmt: skip
        result = resource_policy_authorization(node, ACCOUNT, trust, "sts:AssumeRole", role["Arn"], {})
        # NODE_MATCH: the trust policy names this role; ROOT_MATCH would trust the whole account.
        assert result in (ResourcePolicyEvalResult.NODE_MATCH, ResourcePolicyEvalResult.NO_MATCH), (arn, result)
        return result == ResourcePolicyEvalResult.NODE_MATCH

    trusted = {name for name, arn in function_roles.items() if may_assume(arn)}
    assert trusted == SCOPED_FUNCTIONS
    worker_role = resolve({"Fn::GetAtt": ["BuildWorkerTaskRole", "Arn"]})
    assert may_assume(worker_role)  # for its artifacts
    worker_statements = _statements(resolve, resources, "BuildWorkerTaskRole")
    assert any(s["Action"] == ["sts:AssumeRole"] and _arn_like(role["Arn"], s["Resource"]) for s in worker_statements)
    assert not any("s3:PutObject" in s["Action"] for s in worker_statements)  # only as the project
    # Each of them may assume it by its own policy, and none holds project data in its own right.
    for name in SCOPED_FUNCTIONS:
        statements = _statements(resolve, resources, name + "Role")
        assert any("sts:AssumeRole" in s["Action"] and _arn_like(role["Arn"], s["Resource"]) for s in statements), name
        for statement in statements:
            resources_of = statement["Resource"]
            for resource in resources_of if isinstance(resources_of, list) else [resources_of]:
                assert "/projects/" not in resource and "/manifests/" not in resource, (name, statement)
            leading = json.dumps(statement.get("Condition", {}))
            assert "lock#" not in leading and "syncreq#" not in leading and "project#" not in leading, name


def test_the_api_signs_uploads_as_a_role_that_may_only_write_project_files(resolved: Any, role: dict[str, Any]) -> None:
    """Upload and download URLs are signed with an AssumeRole session (core/presign.py: its expiry is known),
    of a role that only the API may assume and that may only put, get and find project files (never delete);
    the API writes none itself."""
    resolve, resources = resolved
    signing_arn = resolve({"Fn::GetAtt": ["UploadSigningRole", "Arn"]})
    signing = resolve(resources["UploadSigningRole"]["Properties"])
    api_role_arn = resolve({"Fn::GetAtt": ["ApiFunctionRole", "Arn"]})
    assert signing["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": api_role_arn}}
    ]
    granted = [s for p in signing["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [(s["Action"], s["Resource"], s.get("Condition")) for s in granted] == [
        (["s3:PutObject"], role["BucketArn"] + "/projects/*", None),
        (["s3:GetObject"], role["BucketArn"] + "/projects/*", None),
        (["s3:ListBucket"], role["BucketArn"], {"StringLike": {"s3:prefix": "projects/*"}}),
    ]
    assert signing["MaxSessionDuration"] == scoped.SESSION_SECONDS  # role chaining: an hour at most
    api = resolve(resources["ApiFunction"]["Properties"])
    assert api["Environment"]["Variables"]["PROJECT_ACCESS_ROLE_ARN"] == signing_arn
    policies = resolve(resources["ApiFunctionRole"]["Properties"])["Policies"]
    own = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assumable = [s["Resource"] for s in own if "sts:AssumeRole" in s["Action"]]
    assert assumable and all(_arn_like(signing_arn, r) and not _arn_like(role["Arn"], r) for r in assumable)
    assert not any("s3:PutObject" in s["Action"] for s in own)


def test_a_signing_session_reaches_its_projects_files_only(resolved: Any, role: dict[str, Any]) -> None:
    """UploadSigningRole with A's session policy, judged by the evaluator: what a download needs of A
    (find the key with a prefix listing, get it) and an upload's put are allowed; B's files, deleting,
    listing outside A and the manifests are not."""
    resolve, resources = resolved
    props = resolve(resources["UploadSigningRole"]["Properties"])
    signing = {**role, "Arn": resolve({"Fn::GetAtt": ["UploadSigningRole", "Arn"]}), "Policies": props["Policies"],
               "AssumeRolePolicyDocument": props["AssumeRolePolicyDocument"]}  # fmt: skip
    session = policy_of(role, A)
    needed = [
        obj(role, "s3:PutObject", f"projects/{A}/src/app.js"),
        obj(role, "s3:GetObject", f"projects/{A}/src/app.js"),
        listing(role, f"projects/{A}/src/app.js"),  # core.downloads: Prefix = the key itself
    ]
    assert all(allowed(signing, r, session) for r in needed)
    refused = [
        obj(role, "s3:GetObject", f"projects/{B}/src/app.js"),
        listing(role, f"projects/{B}/src/app.js"),
        listing(role, f"projects/{A}0/x"),
        listing(role, "projects/"),
        listing(role, None),
        obj(role, "s3:DeleteObject", f"projects/{A}/src/app.js"),
        obj(role, "s3:GetObject", f"manifests/{A}.json"),
        obj(role, "s3:GetObject", f"artifacts/{A}/{'0' * 32}/dist/app.js"),
        items(role, "dynamodb:GetItem", f"project#{A}"),
    ]
    assert not [r for r in refused if allowed(signing, r, session)]


def _statements(resolve: Any, resources: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """A role's statements: its inline policies' and those of the stack's managed policies it attaches."""
    props = resolve(resources[role]["Properties"])
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    for arn in resources[role]["Properties"].get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and resources.get(arn.get("Ref"), {}).get("Type") == "AWS::IAM::ManagedPolicy":
            documents.append(resolve(resources[arn["Ref"]]["Properties"])["PolicyDocument"])
    return [s for d in documents for s in (d["Statement"] if isinstance(d["Statement"], list) else [d["Statement"]])]


def _arn_like(arn: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(arn, pattern)


# ------------------------------------------------------------------------------ (b) the role, enforced by moto
def _denied(call: Any) -> bool:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    return False


def test_moto_enforces_the_roles_own_policy(role: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.settings
    from moto.core.authorization import ActionAuthenticatorMixin

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bucket = role["BucketArn"].split(":::", 1)[1]
    with mock_aws():
        root = boto3.Session(region_name=REGION)
        root.client("s3").create_bucket(Bucket=bucket)
        iam = root.client("iam")
        name = role["Arn"].rsplit("/", 1)[1]
        iam.create_role(
            RoleName=name, Path=role["Path"], AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"])
        )
        for policy in role["Policies"]:
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        credentials = root.client("sts").assume_role(
            RoleArn=role["Arn"], RoleSessionName="longrun-" + A, Policy=json.dumps(policy_of(role, A))
        )["Credentials"]
        s3 = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        ).client("s3")
        # From here on every request is authenticated and authorized (moto's INITIAL_NO_AUTH_ACTION_COUNT).
        monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)

        s3.put_object(Bucket=bucket, Key=f"projects/{A}/index.html", Body=b"<h1>a</h1>")
        assert s3.get_object(Bucket=bucket, Key=f"projects/{A}/index.html")["Body"].read() == b"<h1>a</h1>"
        s3.put_object(Bucket=bucket, Key=f"manifests/{A}.json", Body=b"{}")
        s3.delete_object(Bucket=bucket, Key=f"projects/{A}/index.html")

        # Outside the project data the role's own policy holds: refused.
        assert _denied(lambda: s3.put_object(Bucket=bucket, Key="sync/job/batches.json", Body=b"[]"))
        assert _denied(lambda: s3.put_object(Bucket=bucket, Key="static/index.html", Body=b"x"))
        assert _denied(lambda: s3.put_object(Bucket=bucket, Key="index.html", Body=b"x"))
        assert _denied(lambda: s3.delete_bucket(Bucket=bucket))
        assert _denied(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": []})))
        # moto ignores the session policy: the role alone reaches project B. Tests (a) judge that part.
        s3.put_object(Bucket=bucket, Key=f"projects/{B}/index.html", Body=b"b")


# ------------------------------------------------------------------------------ (c) the handlers
class Recorder:
    """Every request boto3 sent to moto: (service host/path or target, body, the access key that signed it)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, str]] = []

    def s3(self, fragment: str) -> set[str]:
        """The keys that signed S3 requests whose URL (object key, or listing prefix) holds ``fragment``."""
        return {key for _, url, _, key in self.requests if ".s3." in url and fragment in url}

    def dynamodb(self, table: str, fragment: str = "") -> set[str]:
        """The keys that signed DynamoDB requests on ``table`` whose body holds ``fragment``."""
        return {key for _, url, body, key in self.requests if "dynamodb" in url and table in body and fragment in body}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorded = Recorder()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else str(auth)
        key = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
        body = request.body
        if hasattr(body, "read"):  # a streamed upload: its key is in the URL
            body = b""
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
        recorded.requests.append((request.method, request.url, text, key))
        return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)
    return recorded


def sessions_of(project_id: str) -> list[Any]:
    from moto.sts.models import sts_backends

    return [r for r in sts_backends[ACCOUNT]["aws"].assumed_roles if r.session_name == scoped.session_name(project_id)]


def test_create_project_steps_use_the_projects_credentials(aws: Any, recorder: Recorder) -> None:
    state = run_steps(state_of(aws, job_id="0123456789abcdef" + "0" * 16, name="app-a"))
    project_id = state["projectId"]
    undo.handler(state, FakeContext())  # the compensation: the project's record and files go

    issued = sessions_of(project_id)
    assert len(issued) == 1, "one AssumeRole per project per warm container"
    session = issued[0]
    assert session.role_arn == aws.env["PROJECT_ACCESS_ROLE_ARN"]
    assert session.role_arn.split(":role/", 1)[1].startswith("unit/project-access/")
    assert json.loads(session.policy) == scoped.policy_for(project_id)

    # The project's files (written, listed, read, deleted) and its record: the project's session only.
    projects_table, own = aws.env["PROJECTS_TABLE"], os.environ["AWS_ACCESS_KEY_ID"]
    assert recorder.s3(f"/projects/{project_id}/") == {session.access_key_id}
    assert recorder.s3(f"prefix=projects%2F{project_id}%2F") == {session.access_key_id}
    assert recorder.dynamodb(projects_table, f"project#{project_id}") == {session.access_key_id}
    # The job's own records and the user's name reservation: the function's own credentials.
    assert own != session.access_key_id
    assert recorder.dynamodb(aws.env["JOBS_TABLE"]) == recorder.dynamodb(aws.env["JOB_EVENTS_TABLE"]) == {own}
    assert recorder.dynamodb(projects_table, "name#") == {own}


def test_each_project_gets_its_own_session(aws: Any, recorder: Recorder) -> None:
    first = run_steps(state_of(aws, job_id="a" * 32, name="app-a"), until="scaffold")
    second = run_steps(state_of(aws, job_id="b" * 32, name="app-b"), until="scaffold")
    one, two = sessions_of(first["projectId"]), sessions_of(second["projectId"])
    assert len(one) == len(two) == 1 and one[0].access_key_id != two[0].access_key_id
    assert recorder.s3(f"/projects/{first['projectId']}/") == {one[0].access_key_id}
    assert recorder.s3(f"/projects/{second['projectId']}/") == {two[0].access_key_id}
    assert f"projects/{first['projectId']}/" not in json.dumps(json.loads(two[0].policy))


def test_a_function_without_the_role_refuses_to_touch_project_data(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import aws as core_aws

    monkeypatch.delenv("PROJECT_ACCESS_ROLE_ARN")
    core_aws.project_client.cache_clear()
    scoped.forget()
    with pytest.raises(scoped.NotConfigured):
        core_aws.project_client(A, "s3")


def test_credentials_refresh_before_they_expire(aws: Any) -> None:
    """The session's credentials are botocore's refreshable ones: renewed 15 minutes before the hour is up."""
    session = scoped.project_session(A)
    credentials = session.get_credentials()
    first = credentials.get_frozen_credentials().access_key
    assert len(sessions_of(A)) == 1
    credentials._expiry_time = credentials._expiry_time.replace(year=2000)  # as if the hour had passed
    assert credentials.get_frozen_credentials().access_key != first
    assert len(sessions_of(A)) == 2
    assert scoped.project_session(A) is session  # the same session, kept


def test_the_scoped_module_names_no_account_region_or_endpoint() -> None:
    """core/scoped.py builds ARNs from the role's and the function's settings, never a fixed account or region."""
    text = (Path(scoped.__file__)).read_text()
    assert ACCOUNT not in text and REGION not in text and "amazonaws.com" not in text


def test_a_sync_acts_as_its_project(aws: Any, recorder: Recorder) -> None:
    """A small sync (its listing copies the files): lock, listing, objects and manifest as the project;
    the job's work files under sync/<jobId>/ and its records with the function's own credentials."""
    from steps.sync import acquire, list_page

    job_id, project_id = "c" * 32, "prj-" + "c" * 16
    params = {"direction": "s3-to-efs"}
    aws.put_job(job_id, type="sync", projectId=project_id, params=params)
    # The project exists: a sync of a deleted one stops at Acquire (ProjectGone).
    record = {"pk": f"project#{project_id}", "projectId": project_id, "userId": "alice"}
    aws.table("PROJECTS_TABLE").put_item(Item=record)
    for name in ("index.html", "src/app.js"):
        aws.client("s3").put_object(Bucket=aws.bucket, Key=f"projects/{project_id}/{name}", Body=name.encode())
    recorder.requests.clear()  # the uploads above were the test's, not the steps'
    event = {"jobId": job_id, "projectId": project_id, "userId": "alice", "type": "sync", "params": params}
    listing = acquire.handler(event, FakeContext())
    assert listing["acquired"]
    listing = list_page.handler({**event, "listing": listing}, FakeContext())
    assert listing["result"]["copied"] == 2
    assert (aws.efs / "projects" / project_id / "src" / "app.js").read_bytes() == b"src/app.js"

    (session,) = sessions_of(project_id)
    own = os.environ["AWS_ACCESS_KEY_ID"]
    assert recorder.s3(f"/projects/{project_id}/") == {session.access_key_id}
    assert recorder.s3(f"prefix=projects%2F{project_id}%2F") == {session.access_key_id}
    assert recorder.s3(f"/manifests/{project_id}.json") == {session.access_key_id}
    assert recorder.dynamodb(aws.env["PROJECTS_TABLE"], f"lock#{project_id}") == {session.access_key_id}
    assert recorder.s3(f"/sync/{job_id}/") | recorder.s3(f"prefix=sync%2F{job_id}%2F") == {own}


def test_build_artifacts_are_uploaded_as_the_project_and_signed_by_the_worker(
    aws: Any, recorder: Recorder, tmp_path: Path
) -> None:
    """The worker writes artifacts/<projectId>/ as the project; their URLs, which must outlive the
    session's hour, are signed with its own role (which may only read artifacts)."""
    from workers.build import artifacts

    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.js").write_bytes(b"console.log(1)")
    listed = artifacts.upload(tmp_path, [artifacts.Artifact("dist/app.js", 14)], A, "d" * 32)

    (session,) = sessions_of(A)
    assert recorder.s3(f"/artifacts/{A}/") == {session.access_key_id}
    assert "X-Amz-Credential=" + os.environ["AWS_ACCESS_KEY_ID"] in listed[0]["url"]
    assert session.access_key_id not in listed[0]["url"]
