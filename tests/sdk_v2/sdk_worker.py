"""Run one stardag 0.28.0 build in a process of its own (concurrent builds, other
environments, profile login).

    python sdk_worker.py --run-id X [--dag diamond|chain] [--length N]
                         [--sleeps A=1,B=1,C=1,D=1] [--start-at UNIX_TS]

The SDK configures itself from the environment this process gets (STARDAG_API_KEY,
or a profile under $HOME/.stardag). Prints one JSON line: the BuildSummary, this
process's pid, and how the registry client authenticates (the auth class and the
environment id it sends). Imports the tasks from ``sdk_tasks`` so classes and ids are
the same as in the test process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stardag as sd  # noqa: E402
from stardag.registry import registry_provider  # noqa: E402

import sdk_tasks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--dag", choices=("diamond", "chain"), default="diamond")
    ap.add_argument("--length", type=int, default=3, help="chain length")
    ap.add_argument("--sleeps", default="", help="diamond: e.g. A=1,B=1,C=1,D=1")
    ap.add_argument("--start-at", type=float, default=0.0)
    args = ap.parse_args()

    if args.dag == "diamond":
        sleeps = {k: float(v) for k, v in (p.split("=") for p in args.sleeps.split(",") if p)}
        root = sdk_tasks.diamond(args.run_id, sleeps=sleeps)["D"]
    else:
        root = sdk_tasks.chain(args.run_id, args.length)[-1]

    registry = registry_provider.get()
    auth = getattr(registry, "_auth", None)

    # Start the builds of a group at the same instant (after the slow imports).
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)

    summary = sd.build(root, raise_on_failure=False)
    tc = summary.task_count
    print(
        json.dumps(
            {
                "status": str(summary.status),
                "build_id": str(summary.build_id) if summary.build_id else None,
                "error": None if summary.error is None else repr(summary.error),
                "discovered": tc.discovered,
                "previously_completed": tc.previously_completed,
                "succeeded": tc.succeeded,
                "failed": tc.failed,
                "root": str(root.id),
                "pid": os.getpid(),
                "auth": type(auth).__name__,
                "environment_id": getattr(registry, "environment_id", None),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
