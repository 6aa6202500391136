"""``longrun projects …`` and ``longrun files …``: a user's projects and their files, over the public REST API.

Kept apart from :mod:`longrun.cli` (which only registers these parsers) so that the command
bodies, with their rules for where a download may be written, stay small and readable.

Where ``files get -o FILE`` writes, and why so: exactly ``FILE``, never a name taken from the
project (a path in a project is the project's, not the user's choice of where to write on their
machine). An existing ``FILE`` is refused unless ``--force``; a directory always is. The bytes go to
a hidden temporary file beside ``FILE`` first and are renamed onto it only once the whole body
arrived, so an interrupted download never leaves a truncated file under the name asked for, and
``--force`` replaces a symbolic link itself, never the file it points to.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from longrun.client import DEFAULT_ENDPOINTS_FILE, ApiError, Client

CHUNK = 1 << 16
TABLE_FIELDS = ("projectId", "name", "status", "defaultBranch", "createdAt")
# Exit codes: 0 done, 1 the API or S3 refused (the error body on stderr), 2 refused here before any request.
REFUSED_HERE = 2


def _client(args: argparse.Namespace) -> Client:
    from longrun.cli import _client as make_client  # one way to find the endpoints and the token

    return make_client(args)


def _api_error(e: ApiError) -> int:
    print(json.dumps(e.body, indent=2) if e.body else str(e), file=sys.stderr)
    return 1


# --- projects -------------------------------------------------------------------------------------


def _pages(client: Client, limit: int | None, cursor: str | None, every: bool) -> Iterator[dict[str, Any]]:
    """The pages of ``GET /projects`` from ``cursor``: one, or with ``every`` each until ``nextCursor`` is null."""
    while True:
        page = client.projects(limit=limit, cursor=cursor)
        yield page
        cursor = page.get("nextCursor")
        if not every or not cursor:
            return


def print_projects(items: list[dict[str, Any]], out: Any = None) -> None:
    """A table of ``TABLE_FIELDS``, one project a row (``-`` for a field it has none of)."""
    out = out or sys.stdout
    cells = [[str(item.get(f) or "-") for f in TABLE_FIELDS] for item in items]
    widths = [max(len(row[i]) for row in [list(TABLE_FIELDS), *cells]) for i in range(len(TABLE_FIELDS))]
    for row in [list(TABLE_FIELDS), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def cmd_projects(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        if args.projects_command == "list":
            pages = list(_pages(client, args.limit, args.cursor, args.all))
            items = [item for page in pages for item in page.get("items", [])]
            next_cursor = pages[-1].get("nextCursor")
            if args.json:
                print(json.dumps({"items": items, "nextCursor": next_cursor}, indent=2))
            elif items:
                print_projects(items)
            else:
                print("no projects", file=sys.stderr)
            if next_cursor and not args.json:  # stderr: the table on stdout stays only the table
                print(f"more: longrun projects list --cursor {next_cursor} (or --all)", file=sys.stderr)
            return 0
        if args.projects_command == "get":
            print(json.dumps(client.project(args.project_id), indent=2))
            return 0
        # delete: the delete-project job, as `jobs start --watch` shows one
        job = client.delete_project(args.project_id, args.idempotency_key)
        if not args.watch:
            print(json.dumps(job, indent=2))
            return 0
        from longrun.cli import _watch

        print(f"job {job['jobId']} (delete-project of {args.project_id}) accepted; watching…", flush=True)
        return _watch(client, job["jobId"], args.json)
    except ApiError as e:
        return _api_error(e)


# --- files ----------------------------------------------------------------------------------------


def _refusal(output: Path, force: bool) -> str | None:
    """Why ``output`` may not be written, or None. Checked before any request, so nothing is asked in vain."""
    if output.is_dir():
        return f"{output} is a directory: -o names the file to write"
    if os.path.lexists(output) and not force:
        return f"{output} exists: give --force to replace it"
    if not output.parent.is_dir():
        return f"{output.parent} is not a directory"
    return None


def _stream(url: str, sink: BinaryIO) -> int:
    """GET the pre-signed URL (no Authorization: the signature is the grant) into ``sink``; the byte count.

    Raises :class:`DownloadFailed` when S3 refuses (an expired URL, a file deleted meanwhile) or the
    body is shorter than its ``Content-Length``.
    """
    with httpx.stream("GET", url, timeout=60) as response:
        if response.status_code != 200:
            response.read()
            raise DownloadFailed(f"the download URL answered {response.status_code}: {_s3_error(response.text)}")
        written = 0
        for chunk in response.iter_bytes(CHUNK):
            sink.write(chunk)
            written += len(chunk)
        expected = response.headers.get("content-length")
        if expected is not None and int(expected) != written:
            raise DownloadFailed(f"the download ended after {written} of {expected} bytes")
        return written


def _s3_error(text: str) -> str:
    """S3's ``<Code>`` and ``<Message>`` from its XML error body, else its first 200 characters."""
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    if code:
        return f"{code[1]}" + (f" ({message[1]})" if message else "")
    return text[:200] or "no body"


class DownloadFailed(Exception):
    """The GET of a pre-signed URL did not give the whole file."""


def _download_to(url: str, output: Path) -> int:
    """The file into a temporary file beside ``output``, renamed onto it once whole; the byte count."""
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as sink:
            written = _stream(url, sink)
        os.replace(temporary, output)
        return written
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def files_get(args: argparse.Namespace) -> int:
    output = None if args.output in (None, "-") else Path(args.output)
    if output is not None and (problem := _refusal(output, args.force)):
        print(f"longrun files get: {problem}", file=sys.stderr)
        return REFUSED_HERE
    client = _client(args)
    try:
        ticket = client.create_download(args.project_id, args.path)
    except ApiError as e:
        return _api_error(e)
    try:
        if output is None:
            written = _stream(ticket["url"], sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            written = _download_to(ticket["url"], output)
    except (DownloadFailed, httpx.HTTPError) as e:
        print(f"longrun files get: {e}", file=sys.stderr)
        return 1
    if output is not None:
        modified = ticket.get("lastModified", "?")
        print(f"{ticket['path']}: {written} bytes to {output} (S3's copy, last modified {modified})", file=sys.stderr)
    return 0


def files_put(args: argparse.Namespace) -> int:
    source = Path(args.file)
    if not source.is_file():
        print(f"longrun files put: {source} is not a file", file=sys.stderr)
        return REFUSED_HERE
    size = source.stat().st_size
    content_type = args.content_type or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    client = _client(args)
    try:
        grant = client.create_upload(args.project_id, args.path, content_type, size)
    except ApiError as e:
        return _api_error(e)
    try:
        with source.open("rb") as body:
            put = httpx.put(grant["url"], content=body, headers=grant["headers"], timeout=60)
    except (httpx.HTTPError, OSError) as e:
        print(f"longrun files put: {e}", file=sys.stderr)
        return 1
    if put.status_code != 200:
        print(f"longrun files put: the upload URL answered {put.status_code}: {_s3_error(put.text)}", file=sys.stderr)
        return 1
    # The upload starts a sync of the project through S3's events (docs/job-kinds.md#uploads-and-syncs).
    print(json.dumps({"path": grant["path"], "key": grant["key"], "size": size, "contentType": content_type}, indent=2))
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    return files_get(args) if args.files_command == "get" else files_put(args)


# --- parsers --------------------------------------------------------------------------------------


def _client_options(parser: argparse.ArgumentParser) -> None:
    """The options every API command takes (as ``jobs`` does): whose token, which endpoints."""
    parser.add_argument("--user", default=os.environ.get("LONGRUN_USER", "demo"),
                        help="local cloud user when LONGRUN_TOKEN is not set (default demo)")  # fmt: skip
    parser.add_argument("--endpoints-file", type=Path, default=None,
                        help=f"the local cloud's endpoints (default {DEFAULT_ENDPOINTS_FILE})")  # fmt: skip


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("an integer from 1 to 100")
    return value


def add_parsers(sub: Any) -> None:
    """``projects`` and ``files`` under the ``longrun`` parser's sub-commands."""
    projects = sub.add_parser("projects", help="list, read and delete your projects")
    _client_options(projects)
    psub = projects.add_subparsers(dest="projects_command", required=True)
    listing = psub.add_parser("list", help="your projects, newest first (a table; --json for the API's page)")
    listing.add_argument("--limit", type=_limit, help="projects a page (1-100, default the API's 20)")
    listing.add_argument("--cursor", help="go on from a page's nextCursor")
    listing.add_argument("--all", action="store_true", help="follow nextCursor to the last page")
    listing.add_argument("--json", action="store_true", help='{"items", "nextCursor"} instead of a table')
    get = psub.add_parser("get", help="one project, as GET /projects/{projectId} answers")
    get.add_argument("project_id")
    delete = psub.add_parser("delete", help="start the project's delete-project job (DELETE /projects/{projectId})")
    delete.add_argument("project_id")
    delete.add_argument("--idempotency-key")
    delete.add_argument("--watch", action="store_true", help="show its progress until job.finished")
    delete.add_argument("--json", action="store_true", help="with --watch: one JSON event per line")
    projects.set_defaults(func=cmd_projects)

    files = sub.add_parser("files", help="download and upload a project's files (through pre-signed S3 URLs)")
    _client_options(files)
    fsub = files.add_subparsers(dest="files_command", required=True)
    get_file = fsub.add_parser("get", help="download a file of the project as S3 holds it (to stdout, or -o FILE)")
    get_file.add_argument("project_id")
    get_file.add_argument("path", help="the file's path in the project, e.g. src/app.js")
    get_file.add_argument("-o", "--output", metavar="FILE", help="write to FILE (- or absent: stdout)")
    get_file.add_argument("--force", action="store_true", help="replace FILE if it exists")
    put_file = fsub.add_parser("put", help="upload FILE to PATH of the project (it starts a sync of the project)")
    put_file.add_argument("project_id")
    put_file.add_argument("path", help="the file's path in the project")
    put_file.add_argument("file", help="the local file to upload")
    put_file.add_argument("--content-type", help="default: guessed from FILE's name, else application/octet-stream")
    files.set_defaults(func=cmd_files)
