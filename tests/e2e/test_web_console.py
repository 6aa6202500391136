"""The web console (``console/``) in a real headless Chromium, against ``longrun local up``.

A user signs in with a token, starts a create-project job from the form, sees its steps arrive
over the WebSocket and its final status and result, finds it in the job list (and not under
another status), reads its timeline, starts a build whose log lines arrive live and cancels it,
gets a ValidationError's details for a bad job (rendered as text, never as markup), and gets
NotFound for another user's job. The page's screenshot is saved to ``test-output/web-console.png``
and its path printed. No script error and no Content-Security-Policy violation may occur.

The browser is Debian's ``chromium`` (``make test`` installs it when apt-get can), driven by
Playwright through ``executable_path``: Playwright's own browser downloads are never used, so the
test needs no network. Without chromium the browser test skips and says why. The files' headers
(Content-Type, Cache-Control, Content-Security-Policy) and the refusal of paths outside
``console/`` are checked over plain HTTP, both at ``/console/`` (served from disk) and at the
template's ``/static/{proxy+}`` route (read from the local S3 bucket, as on AWS).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longrun.tokens import make_token
from tests.e2e.helpers import http, start_create_project, unique_name, wait_for_status

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("LONGRUN_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOT = REPO / "test-output" / "web-console.png"
# Headless, and nothing that reaches the network on its own (updates, sync, QUIC probes).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it where it can)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra's playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _frames(page: Any) -> list[dict[str, Any]]:
    """Every message the page receives over its WebSockets, as the browser saw it."""
    received: list[dict[str, Any]] = []

    def on_websocket(socket: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            with contextlib.suppress(ValueError, TypeError):
                received.append(json.loads(payload))

        socket.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    return received


def test_a_user_starts_and_watches_a_job(local_cloud: Any, browser: Any) -> None:
    started = time.monotonic()
    user = unique_name("console-user")
    page = browser.new_page(viewport={"width": 1440, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    frames = _frames(page)
    problems: list[str] = []  # script errors and Content-Security-Policy violations
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )

    # /console redirects to /console/; the page finds the API and the WebSocket by itself.
    page.goto(f"{local_cloud.api}/console")
    assert page.url == f"{local_cloud.api}/console/"
    page.wait_for_selector("body[data-ready=true]")
    assert page.is_visible("#sign-in")

    # A refused token stays on the sign-in form, with the API's answer.
    page.fill("#token", "not-a-token")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:not([hidden])")
    assert "Unauthorized" in page.inner_text("#sign-in-error")

    page.fill("#token", make_token(user))
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    assert page.inner_text("#who") == f"signed in as {user}"
    page.wait_for_selector("#connection[data-state=live]")

    # Start a create-project job from the form.
    name = unique_name("web")
    page.select_option("#job-type", "create-project")
    page.fill("#params", json.dumps({"name": name}))
    page.click("#start-button")
    page.wait_for_url(re.compile(r".*#/jobs/.+"))  # (wait_for_function would need the 'unsafe-eval' the CSP refuses)
    job_id = page.evaluate("decodeURIComponent(location.hash.slice('#/jobs/'.length))")
    page.wait_for_selector("#job:not([hidden])")
    assert page.inner_text("#job-id") == job_id

    # Its steps appear as they run, and it ends SUCCEEDED with its result.
    page.wait_for_selector("#steps li[data-step='reserve-name']")
    page.wait_for_selector("#job-status[data-status=SUCCEEDED]")
    steps = page.eval_on_selector_all("#steps li", "items => items.map(i => [i.dataset.step, i.dataset.status])")
    assert [s for s, _ in steps] == ["reserve-name", "write-scaffold", "init-repository", "record-project"]
    assert {status for _, status in steps} == {"SUCCEEDED"}
    result = json.loads(page.inner_text("#outcome-body"))
    assert result["projectId"].startswith("prj-") and result["defaultBranch"]
    assert page.text_content("#outcome-title") == "Result"

    # The live part came over the WebSocket: the page subscribed and the workflow pushed to it.
    pushed = [f for f in frames if f.get("jobId") == job_id]
    assert any(f["type"] == "subscribed" for f in pushed), frames
    assert any(f["type"] == "job.progress" for f in pushed), frames
    assert any(f["type"] == "job.finished" and f["status"] == "SUCCEEDED" for f in pushed), frames

    # The timeline: every event once, seq 1..N, and a lane per step with its start, end and duration.
    page.locator("#timeline .lane").nth(3).wait_for()
    seqs = page.eval_on_selector_all("#event-rows tr", "rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 9
    lanes = page.eval_on_selector_all("#timeline .lane-times", "items => items.map(i => i.textContent)")
    assert all(re.search(r"\d+(\.\d)? (ms|s)", text) for text in lanes), lanes
    link = page.get_attribute("#execution-link", "href")
    assert link is not None and link.startswith("https://us-east-1.console.aws.amazon.com/states/")
    assert page.is_disabled("#cancel-job") and page.is_disabled("#retry-job")

    # The job list has it, finished; the status filter asks the API for that status only.
    row = f"#job-rows tr[data-job-id='{job_id}']"
    page.wait_for_selector(f"{row} .status[data-status=SUCCEEDED]")
    page.select_option("#status-filter", "FAILED")
    page.wait_for_selector(row, state="detached")
    page.select_option("#status-filter", "")
    page.wait_for_selector(row)

    # A build of that project: its log lines arrive live, and Cancel stops it.
    page.select_option("#job-type", "build")
    page.fill("#project-id", result["projectId"])
    page.fill("#params", json.dumps({"command": "echo hello-from-the-build; sleep 60", "timeoutSeconds": 120}))
    page.click("#start-button")
    page.wait_for_url(re.compile(r".*#/jobs/(?!" + re.escape(job_id) + r").+"))
    page.wait_for_selector("#job-status[data-status=RUNNING]")
    page.locator("#log", has_text="hello-from-the-build").wait_for()
    page.click("#cancel-job")
    page.wait_for_selector("#job-status[data-status=CANCELLED]")
    page.locator("#action-answer", has_text="Cancel accepted (202)").wait_for()
    # Retry shows the API's answer: a cancelled job is not retried, and the page says why.
    page.click("#retry-job")
    page.locator("#job-error:not([hidden]) .code", has_text="Conflict").wait_for()
    assert "CANCELLED" in page.text_content("#job-error")
    page.click(f"#job-rows tr[data-job-id='{job_id}'] a")  # back to the first job from the list
    page.wait_for_selector("#job-status[data-status=SUCCEEDED]")
    page.locator("#timeline .lane").nth(3).wait_for()
    page.locator("#event-rows tr").nth(8).wait_for()  # its nine events, read again over REST

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"\nweb console screenshot: {SCREENSHOT}")

    # A job the API refuses: its ValidationError with each detail, shown as text.
    page.select_option("#job-type", "create-project")
    page.fill("#params", json.dumps({"name": "<b>Bad</b>"}))
    page.click("#start-button")
    page.wait_for_selector("#start-error:not([hidden])")
    error = page.inner_text("#start-error")
    assert "ValidationError" in error and "params.name" in error and "<b>Bad</b>" in error, error
    assert page.locator("#start-error b").count() == 0  # the name was not parsed as markup
    page.fill("#params", "{not json")
    page.click("#start-button")
    page.locator("#start-error", has_text="params is not JSON").wait_for()

    # Another user's job is not found (never confirmed to exist).
    other = start_create_project(local_cloud, user=unique_name("stranger"))
    page.evaluate("id => { location.hash = '#/jobs/' + encodeURIComponent(id) }", other["jobId"])
    page.wait_for_selector("#job-missing:not([hidden])")
    assert "NotFound" in page.inner_text("#job-missing-error")
    assert page.is_hidden("#job")

    # Signing out forgets the token.
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('longrun.token')") is None
    assert problems == []
    page.close()
    print(f"web console test: {time.monotonic() - started:.1f} s")


def _signed_in_page(cloud: Any, browser: Any, user: str) -> tuple[Any, list[str]]:
    """A page signed in as ``user``, and the list its script errors and CSP violations go to."""
    page = browser.new_page(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{cloud.api}/console/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#token", make_token(user))
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#connection[data-state=live]")
    return page, problems


def _projects_of(cloud: Any, user: str, count: int) -> list[dict[str, Any]]:
    """``count`` projects of ``user``, made by create-project jobs started together; as GET /projects lists them."""
    started = [start_create_project(cloud, user, prefix="webp") for _ in range(count)]
    for job in started:
        assert wait_for_status(cloud, job["jobId"], user, timeout=120)["status"] == "SUCCEEDED"
    listed = http(cloud, "GET", "/projects?limit=100", user).json()["items"]
    assert sorted(p["projectId"] for p in listed) == sorted(job["projectId"] for job in started)
    return listed


def test_a_user_pages_projects_downloads_a_file_branches_and_deletes(local_cloud: Any, browser: Any) -> None:
    """The projects card: paging, a download saved by the browser, a git-flow start, a delete watched live."""
    started = time.monotonic()
    user = unique_name("console-projects")
    projects = _projects_of(local_cloud, user, 6)  # one more than a page (PROJECTS_PAGE in app.js); newest first
    stranger = start_create_project(local_cloud, unique_name("stranger"))["projectId"]
    first, second = projects[0], projects[1]  # the first rows of the list
    # A file of the first project, uploaded with a form content type (what a bare urllib PUT sends).
    body = "hello from the console test: ünïcode, a NUL \x00 and CR LF\r\n".encode()
    upload = {"path": "notes/hello.txt", "contentType": "application/x-www-form-urlencoded"}
    grant = http(local_cloud, "POST", f"/projects/{first['projectId']}/uploads", user, json=upload).json()
    assert httpx.put(grant["url"], content=body, headers=grant["headers"]).status_code == 200

    page, problems = _signed_in_page(local_cloud, browser, user)
    rows = "#project-rows tr"
    page.locator(rows).nth(4).wait_for()
    ids = page.eval_on_selector_all(rows, "rows => rows.map(r => r.dataset.projectId)")
    assert ids == [p["projectId"] for p in projects[:5]]  # one page, in the API's order
    page.click("#more-projects")
    page.locator(rows).nth(5).wait_for()
    assert page.is_hidden("#more-projects")
    ids = page.eval_on_selector_all(rows, "rows => rows.map(r => r.dataset.projectId)")
    assert ids == [p["projectId"] for p in projects] and stranger not in ids

    # Open the first project: its actions, and it becomes the start form's project.
    page.click(f"#project-rows tr[data-project-id='{first['projectId']}'] button")
    page.wait_for_selector("#project:not([hidden])")
    assert page.text_content("#project-name") == first["name"]

    # A download: the ticket, then the browser saves the bytes S3 holds, under the file's own name.
    deadline = time.monotonic() + 60
    while "NotFound" in http(local_cloud, "POST", f"/projects/{first['projectId']}/downloads", user,
                             json={"path": "notes/hello.txt"}).text:  # fmt: skip
        assert time.monotonic() < deadline, "the upload never reached S3"
        time.sleep(0.2)
    page.fill("#download-path", "notes/hello.txt")
    with page.expect_download() as downloading:
        page.click("#download-button")
    download = downloading.value
    assert download.suggested_filename == "hello.txt"
    assert Path(download.path()).read_bytes() == body
    page.locator("#download-answer", has_text=f"notes/hello.txt: {len(body)} bytes").wait_for()
    page.screenshot(path=str(SCREENSHOT.with_name("web-console-projects.png")), full_page=True)
    # A file S3 does not hold, and a hostile path: the API's answer, as text.
    page.fill("#download-path", "no/such.txt")
    page.click("#download-button")
    page.locator("#project-error:not([hidden]) .code", has_text="NotFound").wait_for()
    page.fill("#download-path", "../../etc/passwd")
    page.click("#download-button")
    page.locator("#project-error:not([hidden]) .code", has_text="ValidationError").wait_for()
    assert "path" in page.inner_text("#project-error")

    # A git action: git-flow's feature-start, watched live in the job view (once the upload's sync,
    # which holds the project's lock, is over).
    while any(j["status"] == "RUNNING" for j in http(local_cloud, "GET", f"/jobs?projectId={first['projectId']}",
                                                     user).json()["items"]):  # fmt: skip
        assert time.monotonic() < deadline + 60, "the upload's sync never ended"
        time.sleep(0.2)
    page.select_option("#branch-flow", "feature-start")
    assert page.is_disabled("#branch-from")
    page.fill("#branch-name", "login")
    page.click("#branch-button")
    page.wait_for_url(re.compile(r".*#/jobs/.+"))
    page.wait_for_selector("#job-status[data-status=SUCCEEDED]")
    assert page.inner_text("#job-type-value") == "git-branch"
    assert json.loads(page.inner_text("#outcome-body"))["branch"] == "feature/login"
    branch_job = page.inner_text("#job-id")

    # Delete the second project: only once its name is typed; the delete-project job runs live.
    page.click(f"#project-rows tr[data-project-id='{second['projectId']}'] button")
    page.locator("#project-name", has_text=second["name"]).wait_for()
    page.click("#delete-project")
    assert page.is_disabled("#delete-confirm-button")
    page.fill("#delete-name", second["name"][:-1])
    assert page.is_disabled("#delete-confirm-button")
    page.fill("#delete-name", second["name"])
    page.click("#delete-confirm-button")
    page.wait_for_url(re.compile(r".*#/jobs/(?!" + re.escape(branch_job) + r").+"))
    page.locator("#job-type-value", has_text="delete-project").wait_for()
    page.wait_for_selector("#job-status[data-status=SUCCEEDED]")
    assert page.inner_text("#job-type-value") == "delete-project"
    assert page.locator("#steps li").count() >= 3  # its steps arrived: mark, objects, workspace, records
    page.wait_for_selector(f"#project-rows tr[data-project-id='{second['projectId']}']", state="detached")
    assert page.is_hidden("#project")  # the panel of a project that is gone closes
    assert http(local_cloud, "GET", f"/projects/{second['projectId']}", user).status_code == 404
    assert problems == []
    page.close()
    print(f"web console projects test: {time.monotonic() - started:.1f} s")


def test_the_deployed_shape_serves_the_same_console(local_cloud: Any, browser: Any) -> None:
    """``{api}/static/console/index.html``: the files the local cloud put in its bucket, through the template's route.

    config.json beside them names the WebSocket, and the page finds the API base from /static/….
    """
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{local_cloud.api}/static/console/index.html")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#token", make_token(unique_name("static-user")))
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#jobs-empty:not([hidden])")  # GET {api}/jobs answered: a new user has none
    page.close()


@pytest.mark.parametrize("base", ["/console/", "/static/console/"])
def test_files_have_strict_headers(local_cloud: Any, base: str) -> None:
    expected = {
        "index.html": "text/html",
        "app.js": "text/javascript",
        "style.css": "text/css",
        "config.json": "application/json",
    }
    for name, content_type in expected.items():
        response = httpx.get(f"{local_cloud.api}{base}{name}")
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith(content_type)
        assert response.headers["cache-control"] == "no-cache"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        assert f"connect-src 'self' {local_cloud.ws}" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{local_cloud.api}{base}config.json").json() == {"ws": local_cloud.ws}


@pytest.mark.parametrize(
    "path",
    [
        "/console/../pyproject.toml",
        "/console/%2e%2e/pyproject.toml",
        "/console/..%2fpyproject.toml",
        "/console/%2e%2e%2f%2e%2e%2fetc/passwd",
        "/console/.gitignore",
        "/console/app.js%00.css",
        "/console/missing.js",
        "/static/console/../../pyproject.toml",
        "/static/..%2fprojects/anything",
        "/static/projects/anything",
    ],
)
def test_nothing_outside_the_console_is_served(local_cloud: Any, path: str) -> None:
    # A raw request line: httpx would normalise the dot segments away.
    with httpx.Client(base_url=local_cloud.api) as client:
        request = client.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        response = client.send(request)
    assert response.status_code == 404, (path, response.text)
    assert response.json()["error"]["code"] == "NotFound"


def test_no_token_is_needed_for_the_files_only(local_cloud: Any) -> None:
    assert httpx.get(f"{local_cloud.api}/console/").status_code == 200
    assert httpx.get(f"{local_cloud.api}/static/console/index.html").status_code == 200
    assert httpx.get(f"{local_cloud.api}/jobs").status_code == 401
