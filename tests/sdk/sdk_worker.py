"""Run one stardag build in its own process (the global-lock and rate-limit tests).

    python sdk_worker.py --run-id X [--sequential] [--lock] [--sleeps A=2,B=3,C=3,D=3]
                         [--start-at UNIX_TS] [--lock-wait-timeout S] [--wide N]

Prints one JSON line with the BuildSummary on stdout. Imports the tasks from
``sdk_tasks`` so the task classes (and ids) are the same as in the test process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stardag as sd  # noqa: E402
from stardag.build import GlobalLockConfig  # noqa: E402
from stardag.registry import RegistryGlobalConcurrencyLockManager  # noqa: E402

import sdk_tasks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--sequential", action="store_true")
    ap.add_argument("--lock", action="store_true")
    ap.add_argument("--sleeps", default="", help="e.g. A=2,B=3,C=3,D=3")
    ap.add_argument("--start-at", type=float, default=0.0)
    ap.add_argument("--lock-wait-timeout", type=float, default=90.0)
    ap.add_argument(
        "--wide", type=int, default=0,
        help="build sdk_tasks.wide_dag(run_id, N) (N + 1 tasks) instead of the diamond",
    )
    args = ap.parse_args()

    sleeps = {
        k: float(v) for k, v in (p.split("=") for p in args.sleeps.split(",") if p)
    }
    if args.wide:
        root = sdk_tasks.wide_dag(args.run_id, width=args.wide)
    else:
        root = sdk_tasks.diamond(args.run_id, sleeps=sleeps)["D"]
    kwargs = {}
    if args.lock:
        kwargs["global_lock_manager"] = RegistryGlobalConcurrencyLockManager()
        kwargs["global_lock_config"] = GlobalLockConfig(
            enabled=True, lock_wait_timeout_seconds=args.lock_wait_timeout
        )

    # Start both workers of a pair at the same instant (after the slow imports).
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)

    build = sd.build_sequential if args.sequential else sd.build
    summary = build(root, **kwargs)
    print(
        json.dumps(
            {
                "status": str(summary.status),
                "build_id": str(summary.build_id) if summary.build_id else None,
                "error": None if summary.error is None else repr(summary.error),
                "discovered": summary.task_count.discovered,
                "previously_completed": summary.task_count.previously_completed,
                "succeeded": summary.task_count.succeeded,
                "failed": summary.task_count.failed,
                "pid": os.getpid(),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
