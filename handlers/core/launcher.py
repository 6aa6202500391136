"""Starting a job: the job record, then its execution. The REST API and the upload trigger share it.

The execution's name is readable in the Step Functions console (``{type}-{project}-{shortid}``)
and, being unique per job, makes a repeated start of the same job a no-op.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core import aws, observability, publisher
from core.clock import now_iso


def execution_name(job_type: str, label: str, job_id: str) -> str:
    """``{type}-{project}-{shortid}``: readable in the console, unique, within Step Functions' 80 chars."""
    label = re.sub(r"[^A-Za-z0-9-]", "-", label)[:40]
    return f"{job_type}-{label}-{job_id[:8]}"


def new_job(
    job_id: str, user_id: str, job_type: str, project_id: str | None, params: dict[str, Any], machine: str
) -> dict[str, Any]:
    """The job record as it is first written: RUNNING, no steps yet, its execution's ARN known in advance."""
    name = execution_name(job_type, params.get("name", project_id or ""), job_id)
    created = now_iso()
    job: dict[str, Any] = {
        "jobId": job_id,
        "userId": user_id,
        "type": job_type,
        "status": "RUNNING",
        "params": params,
        "createdAt": created,
        "updatedAt": created,
        "executionArn": machine.replace(":stateMachine:", ":execution:") + f":{name}",
        "seq": 0,
        "steps": {},
    }
    if project_id:
        job["projectId"] = project_id
    return job


def start_execution(job: dict[str, Any], machine: str, extra: dict[str, Any] | None = None) -> None:
    """Start the job's execution; a job whose start fails is closed ``FAILED`` (and the error re-raised).

    ``JobsStarted`` counts the jobs whose execution started; one that could not start counts only
    in ``JobsFinished`` (``FAILED``).
    """
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=machine,
            name=job["executionArn"].rsplit(":", 1)[-1],
            input=json.dumps(
                {
                    "jobId": job["jobId"],
                    # Every step logs it (core.observability): its lines lead to the execution.
                    "executionArn": job["executionArn"],
                    "userId": job["userId"],
                    "projectId": job.get("projectId"),
                    "type": job["type"],
                    "params": job["params"],
                    **(extra or {}),
                }
            ),
        )
    except Exception:
        publisher.finish(job, "FAILED", error={"code": "StartFailed", "message": "the job could not be started"})
        raise
    # Every start passes here (POST /jobs, the upload and Start Job triggers): counted once each.
    observability.job_started(job)
