"""Task definitions for the stardag==0.1.0 compatibility test.

Declared with the 0.1.0 API: class-based ``sd.AutoTask[T]`` with ``requires()`` and
``run()``; dependencies are fields typed ``sd.TaskLoads[T]`` (polymorphic, so the
task serialises with ``__namespace``/``__name`` and can be rebuilt from the
registry's metadata ``body``).

Every task execution appends one JSON line to the file named by
``SDK_TEST_EXEC_LOG`` (if set), so tests can count how often each task ran,
also across processes.

Always import this module as ``sdk_tasks`` (never run it as ``__main__``):
task identity depends on the registered class, see ``sdk_worker.py``.
"""

from __future__ import annotations

import json
import os
import time

import stardag as sd
from stardag.registry_asset import JSONRegistryAsset, MarkdownRegistryAsset

NAMESPACE = "sdk_compat"
sd.namespace(NAMESPACE, __name__)

EXEC_LOG_ENV = "SDK_TEST_EXEC_LOG"


def _record(task: sd.BaseTask) -> None:
    path = os.environ.get(EXEC_LOG_ENV)
    if not path:
        return
    line = json.dumps(
        {"task_name": task.get_name(), "task_id": str(task.id), "pid": os.getpid()}
    )
    # One small O_APPEND write per execution: safe across threads and processes.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_exec_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Leaf(sd.AutoTask[int]):
    """Diamond top (A). ``run_id`` salts the whole DAG's ids."""

    run_id: str
    value: int = 1
    sleep_s: float = 0.0

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.output().save(self.value)


class Branch(sd.AutoTask[int]):
    """Diamond middle (B, C): upstream * factor."""

    upstream: sd.TaskLoads[int]
    factor: int
    sleep_s: float = 0.0

    def requires(self):
        return self.upstream

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.output().save(self.upstream.output().load() * self.factor)


class Join(sd.AutoTask[int]):
    """Diamond bottom (D): left + right."""

    left: sd.TaskLoads[int]
    right: sd.TaskLoads[int]
    sleep_s: float = 0.0

    def requires(self):
        return [self.left, self.right]

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.output().save(self.left.output().load() + self.right.output().load())


class Boom(sd.AutoTask[int]):
    """Fails with ``message`` after its dependency completed."""

    upstream: sd.TaskLoads[int]
    message: str

    def requires(self):
        return self.upstream

    def run(self):
        _record(self)
        raise RuntimeError(self.message)


class Report(sd.AutoTask[dict]):
    """Writes a small dict and exposes it as registry assets (markdown + JSON)."""

    run_id: str
    rows: int = 3

    def run(self):
        _record(self)
        self.output().save(
            {"rows": self.rows, "items": [{"i": i, "sq": i * i} for i in range(self.rows)]}
        )

    def registry_assets(self):
        data = self.output().load()
        return [
            MarkdownRegistryAsset(name="summary", body=report_markdown(self.rows)),
            JSONRegistryAsset(name="metrics", body=data),
        ]


def report_markdown(rows: int) -> str:
    return f"# Report\n\n*{rows}* rows, ünïcode ✓\n\n| i | sq |\n|---|----|\n| 1 | 1 |\n"


def diamond(run_id: str, sleeps: dict[str, float] | None = None) -> dict[str, sd.BaseTask]:
    """A -> B, A -> C, (B, C) -> D. Returns the four task instances by letter.

    ``sleeps`` maps a letter to seconds its run() sleeps (part of the task ids).
    """
    s = sleeps or {}
    a = Leaf(run_id=run_id, sleep_s=s.get("A", 0.0))
    b = Branch(upstream=a, factor=2, sleep_s=s.get("B", 0.0))
    c = Branch(upstream=a, factor=3, sleep_s=s.get("C", 0.0))
    d = Join(left=b, right=c, sleep_s=s.get("D", 0.0))
    return {"A": a, "B": b, "C": c, "D": d}


DIAMOND_RESULT = 1 * 2 + 1 * 3  # D's output value


class Fan(sd.AutoTask[int]):
    """Sums many upstream leaves: one task over a wide DAG (rate-limit test)."""

    leaves: list[sd.TaskLoads[int]]

    def requires(self):
        return self.leaves

    def run(self):
        _record(self)
        self.output().save(sum(leaf.output().load() for leaf in self.leaves))


def wide_dag(run_id: str, width: int) -> Fan:
    """``width`` independent leaves and one task over them: ``width + 1`` tasks."""
    return Fan(leaves=[Leaf(run_id=run_id, value=i) for i in range(width)])
