"""``python -m workers.build``: one build worker, until SIGTERM or SIGINT (how ECS and `longrun local up` stop it)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from workers.build.worker import Worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="longrun worker build", description=__doc__)
    parser.add_argument("--queue-url", default=os.environ.get("BUILD_QUEUE_URL"),
                        help="the build queue (default: $BUILD_QUEUE_URL)")  # fmt: skip
    parser.add_argument("--worker-id", default=None, help="a name in logs and progress events (default: host-pid)")
    args = parser.parse_args(argv)
    if not args.queue_url:
        print("longrun worker build: no queue; give --queue-url or set BUILD_QUEUE_URL", file=sys.stderr)
        return 2
    worker = Worker(args.queue_url, args.worker_id)

    def stop(*_: object) -> None:
        worker.stop()  # kills a running build's process group; its message comes back for another worker
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
