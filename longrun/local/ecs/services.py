"""ECS services of the template, run as local processes: one per task, kept at the desired count.

The build worker service (``AWS::ECS::Service``) becomes ``--build-workers N`` processes with the
task definition's command and environment (the image's ``/app`` is this repository, EFS volumes
are the local EFS directory). Like ECS, a task that stops is replaced, and a stopped task takes
every process it started with it: each task is a session of its own, and when its worker exits the
supervisor kills whatever is left in that session (a build the worker was running).
The template's scaling (queue-depth alarms, scalable target) is AWS's: the local pool keeps N.
With ``--faults worker.kill=R`` each task running a build (its session holds more than the worker)
is killed with ``SIGKILL`` with chance R each second, as a spot interruption or an out-of-memory
kill takes a task on ECS; it is replaced like any stopped task.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from longrun.local.ecs.resources import ServiceSpec
from longrun.local.faults import Faults

log = logging.getLogger("longrun.local.services")


def session_members(session_id: int) -> list[int]:
    """The pids of the processes in a session (``/proc/<pid>/stat``, field 6)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session_id:
            members.append(int(entry))
    return members


def kill_session(session_id: int) -> None:
    for pid in session_members(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class ServicePool:
    """``count`` tasks of one service, replaced when they stop, until :meth:`stop`."""

    def __init__(
        self,
        spec: ServiceSpec,
        count: int,
        base_environment: dict[str, str],
        code_dir: Path,
        logs: Path,
        faults: Faults | None = None,
    ):
        self.spec, self.count, self.code_dir, self.logs = spec, count, code_dir, logs
        self.faults = faults or Faults()
        self.environment = {**base_environment, **spec.environment, "PYTHONPATH": str(code_dir)}
        self.tasks: list[subprocess.Popen[bytes] | None] = [None] * count
        self.replaced = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"service-{spec.name}", daemon=True)

    def start(self) -> None:
        for index in range(self.count):
            self.tasks[index] = self._start_task(index)
        self._thread.start()

    def _command(self) -> list[str]:
        command = list(self.spec.command)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        return command

    def _start_task(self, index: int) -> subprocess.Popen[bytes]:
        log_file = open(self.logs / f"{self.spec.name}-{index}.log", "ab")  # noqa: SIM115 - the child owns it
        environment = {**self.environment, "LONGRUN_WORKER_ID": f"{self.spec.name}-{index}"}
        return subprocess.Popen(
            self._command(),
            cwd=self.code_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> list[int]:
        return [task.pid for task in self.tasks if task is not None and task.poll() is None]

    def _shoot_busy_tasks(self) -> None:
        """``worker.kill``: one draw per task running a build, once a second."""
        for task in list(self.tasks):
            if task is None or task.poll() is not None or len(session_members(task.pid)) < 2:
                continue
            if self.faults.strike("worker.kill"):
                log.warning("injected fault worker.kill: SIGKILL to build worker %s", task.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(task.pid, signal.SIGKILL)

    def _supervise(self) -> None:
        ticks = 0
        while not self._stopping.wait(0.5):
            ticks += 1
            if ticks % 2 == 0 and self.faults.rates.get("worker.kill") and self.faults.armed:
                self._shoot_busy_tasks()
            for index, task in enumerate(self.tasks):
                if task is not None and task.poll() is not None and not self._stopping.is_set():
                    log.warning("build worker %s exited (%s); replacing it", task.pid, task.returncode)
                    kill_session(task.pid)
                    self.tasks[index] = self._start_task(index)
                    self.replaced += 1

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        for task in self.tasks:
            if task is not None and task.poll() is None:
                task.terminate()
        for task in self.tasks:
            if task is None:
                continue
            try:
                task.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                task.kill()
                task.wait()
            kill_session(task.pid)
