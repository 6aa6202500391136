"""``make bench``: run the benchmarks on one local cloud and print the table of figures.

    python -m bench                 # every benchmark, at least 3 rounds each where time allows
    python -m bench --quick         # 1 round, smaller counts: a smoke run
    python -m bench --only accept   # one benchmark (repeat --only for more)

The order is chosen for a reason: handler imports first, on a machine with nothing else running;
then the benchmarks that create jobs, those whose figures include job-event writes first: moto
copies a whole table on every ``TransactWriteItems``, so each job's writes cost more as the run
adds rows (the report prints the tables' rows and the cost of that write before each benchmark).
Accept latency comes after those because the accept path writes no transaction. Git-clone and the
builds follow (dispatch and live-log latency beside an SQS round trip taken between the builds,
and the scaffold's build with a cold and a warm cache), then the triggers (a job started by a
``Start Job`` event beside one started by ``POST /jobs``; a build stopped behind the API's back,
closed by the execution-status trigger, beside a cancel) and the load (500 jobs of four kinds from
50 clients). Sync runs after those: it writes a GiB and more to the local S3, and its baselines are
command-line tools (the ``bench`` extra: ``pip install -e '.[bench]'``, which ``make bench`` does).
Then the same load on a local cloud of its own started with ``--faults`` (the example rates of
``longrun.local.faults``, a fixed seed). Last, what each job kind uses of what AWS bills, on a
quiet local cloud of its own (``bench/costs.py``: one table per kind, the idle costs, the price
list). The table is also
written to ``bench/results/latest.md`` (scratch); a full run (neither ``--quick`` nor ``--only``)
is also kept as ``bench/results/<UTC date-time>.md`` and its table put in docs/benchmarks.md
(``bench/publish.py``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import accept, build, completion, costs, git_clone, imports, load, publish, sync, throughput, triggers
from bench.cloud import Cloud, cores
from bench.report import Section, render

RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
# Each section that needs the local cloud, in the order they run: its module (a Settings with
# quick(), and run) and its title.
CLOUD_SECTIONS = {
    "completion": (completion, "completion latency"),
    "throughput": (throughput, "throughput"),
    "accept": (accept, "accept latency"),
    "git-clone": (git_clone, "git-clone"),
    "build": (build, "builds"),
    "triggers": (triggers, "triggers"),
    "load": (load, "load"),
    "sync": (sync, "sync"),
}
CLOUD_BENCHMARKS = tuple(CLOUD_SECTIONS)
# The load again, on a local cloud of its own started with --faults (longrun.local.faults' example rates).
FAULTS_SEED = "1"
ALL = ("imports", *CLOUD_BENCHMARKS, "faults", "costs")


def say(message: str) -> None:
    """Progress on stderr: a full run takes minutes, and the table goes to stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _shown(path: Path) -> Path:
    """A path as the user typed it: relative to where ``make bench`` runs, when it is inside."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _timed(name: str, body: Callable[[], Section]) -> Section:
    started = time.monotonic()
    try:
        section = body()
    except Exception as e:  # one broken benchmark must not hide the figures of the others
        traceback.print_exc()
        section = Section(name, notes=[f"FAILED: {type(e).__name__}: {e}"])
    section.seconds = time.monotonic() - started
    say(f"{name}: done in {section.seconds:.0f} s")
    return section


def _load_under_faults(quick: bool, keep: bool) -> Section:
    """The load benchmark on a local cloud started with ``--faults``: nothing may be lost."""
    from longrun.local.faults import EXAMPLE_SPEC

    say(f"starting longrun local up --faults {EXAMPLE_SPEC} --faults-seed {FAULTS_SEED}")
    cloud = Cloud.start(extra_args=("--faults", EXAMPLE_SPEC, "--faults-seed", FAULTS_SEED))
    try:
        s = load.Settings.quick() if quick else load.Settings()
        return _timed("load under faults", lambda: load.run(cloud, s, say, faults=EXAMPLE_SPEC))
    finally:
        cloud.stop(keep=keep)


def _costs(quick: bool, keep: bool) -> Section:
    """Each job kind's counts of what AWS bills, on a local cloud of its own: nothing else runs beside them."""
    say("starting longrun local up for the cost counts")
    cloud = Cloud.start()
    try:
        s = costs.Settings.quick() if quick else costs.Settings()
        return _timed("costs per job kind", lambda: costs.run(cloud, s, say))
    finally:
        cloud.stop(keep=keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round and small counts: a smoke run")
    parser.add_argument("--only", action="append", choices=ALL, metavar="NAME",
                        help=f"run only this benchmark (one of {', '.join(ALL)}); repeatable")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the local cloud's data directory and logs")
    args = parser.parse_args(argv)
    chosen = [name for name in ALL if not args.only or name in args.only]
    quick = args.quick
    started = time.monotonic()
    sections: list[Section] = []

    if "imports" in chosen:
        settings = imports.Settings.quick() if quick else imports.Settings()
        sections.append(_timed("handler import time", lambda: imports.run(settings, say)))

    cloud_note = ""
    if any(name in CLOUD_BENCHMARKS for name in chosen):
        say("starting longrun local up")
        t = time.monotonic()
        cloud = Cloud.start()
        cloud_note = f"local cloud: started in {time.monotonic() - t:.1f} s"
        say(cloud_note + f" (data and logs in {cloud.workdir})")
        try:
            for name in CLOUD_BENCHMARKS:
                if name not in chosen:
                    continue
                state = cloud.state_note()
                module, title = CLOUD_SECTIONS[name]
                s = module.Settings.quick() if quick else module.Settings()
                section = _timed(title, lambda module=module, s=s: module.run(cloud, s, say))
                section.notes.append(f"state before: {state}")
                sections.append(section)
            cloud_note += f"; at the end: {cloud.state_note()}"
        finally:
            say("stopping the local cloud (SIGTERM)")
            stop_seconds = cloud.stop(keep=args.keep)
            cloud_note += f"; stopped in {stop_seconds:.1f} s after SIGTERM"
            if args.keep:
                cloud_note += f"; data and logs kept in {cloud.workdir}"

    if "faults" in chosen:
        sections.append(_load_under_faults(quick, args.keep))

    if "costs" in chosen:
        sections.append(_costs(quick, args.keep))

    total = time.monotonic() - started
    finished = datetime.now(UTC)
    preamble = [
        f"## longrun benchmarks — {finished.strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"{'quick (smoke) run' if quick else 'full run'}; {platform.node()}, {cores()} cores, "
        f"Python {platform.python_version()}; total {total:.0f} s" + (f"; {cloud_note}" if cloud_note else ""),
    ]
    text = render(sections, preamble)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    say(f"written to {_shown(RESULTS)}")
    if not quick and not args.only:  # a smoke run or a part of the benchmarks is no figure to keep
        history = publish.publish(text, finished)
        say(f"kept as {_shown(history)}; its table is now in {_shown(publish.DOC)}")
    return 1 if any(note.startswith("FAILED") for s in sections for note in s.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
