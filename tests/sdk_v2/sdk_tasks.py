"""Task definitions for the stardag==0.28.0 compatibility test (registry v2).

Declared with the 0.28.0 API: class-based ``sd.Task[T]`` (a JSON file target whose
serializer follows ``T``) with ``requires()`` and ``run()``; dependencies are fields
typed ``sd.TaskLoads[T]`` (polymorphic, so a task body carries
``__namespace``/``__name`` and can be rehydrated from the registry's instance body);
results are written with ``self._save(...)`` and read with ``task.load()``.

Every execution appends one JSON line to the file named by ``SDK_TEST_EXEC_LOG``
(if set), so tests count how often each task ran, also across processes.

Always import this module as ``sdk_tasks`` (never run it as ``__main__``): a task's
id depends on its registered class (namespace and name), see ``sdk_worker.py``.
"""

from __future__ import annotations

import json
import os
import time

import stardag as sd
from stardag.artifact import JSONArtifact, MarkdownArtifact

NAMESPACE = "sdk_v2_compat"
sd.namespace(NAMESPACE, __name__)

EXEC_LOG_ENV = "SDK_TEST_EXEC_LOG"


def _record(task: sd.BaseTask) -> None:
    path = os.environ.get(EXEC_LOG_ENV)
    if not path:
        return
    line = json.dumps(
        {"task_name": task.get_name(), "task_id": str(task.id), "pid": os.getpid(),
         "at": time.time()}
    )
    # One small O_APPEND write per execution: safe across threads and processes.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_exec_log(path: str | None = None) -> list[dict]:
    path = path or os.environ.get(EXEC_LOG_ENV)
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def runs_of(task: sd.BaseTask) -> int:
    """How many executions of ``task`` the exec log holds (this one included)."""
    return sum(1 for r in read_exec_log() if r["task_id"] == str(task.id))


class Leaf(sd.Task[int]):
    """A task without dependencies. ``run_id`` salts the ids of everything above it."""

    run_id: str
    value: int = 1
    sleep_s: float = 0.0

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self._save(self.value)


class Step(sd.Task[int]):
    """upstream + add: a link of a chain, or a side of a diamond."""

    upstream: sd.TaskLoads[int]
    add: int
    sleep_s: float = 0.0

    def requires(self):
        return self.upstream

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self._save(self.upstream.load() + self.add)


class Join(sd.Task[int]):
    """left + right: the bottom of a diamond."""

    left: sd.TaskLoads[int]
    right: sd.TaskLoads[int]
    sleep_s: float = 0.0

    def requires(self):
        return [self.left, self.right]

    def run(self):
        _record(self)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self._save(self.left.load() + self.right.load())


class Gated(sd.Task[int]):
    """Fails with ``message`` while the file ``gate`` does not exist, then succeeds
    (upstream + 100). The test opens the gate between the two attempts."""

    upstream: sd.TaskLoads[int]
    gate: str
    message: str

    def requires(self):
        return self.upstream

    def run(self):
        _record(self)
        if not os.path.exists(self.gate):
            raise RuntimeError(self.message)
        self._save(self.upstream.load() + 100)


def dynamic_children(run_id: str, width: int) -> list[sd.BaseTask]:
    """What :class:`Fanout` yields: ``width`` leaves, and a step over the first one
    (a yielded task with a static upstream of its own)."""
    leaves = [Leaf(run_id=f"{run_id}-kid", value=i) for i in range(width)]
    return [*leaves, Step(upstream=leaves[0], add=10)]


class Fanout(sd.Task[int]):
    """Dynamic dependencies: decides at run time what it needs, yields it, and sums
    the results once the build has completed them."""

    run_id: str
    width: int = 3

    def run(self):
        _record(self)
        children = dynamic_children(self.run_id, self.width)
        yield children
        # the contract: every yielded task is complete here
        self._save(sum(c.load() for c in children))


class Report(sd.Task[dict]):
    """Writes a small dict and exposes it as registry artifacts (markdown + JSON).
    ``run`` counts this task's executions, so a re-run changes the artifact bodies."""

    run_id: str
    rows: int = 3

    def run(self):
        _record(self)
        self._save(
            {
                "run": runs_of(self),
                "rows": self.rows,
                "items": [{"i": i, "sq": i * i} for i in range(self.rows)],
            }
        )

    def artifacts(self):
        data = self.load()
        return [
            MarkdownArtifact(name="summary", body=report_markdown(self.rows, data["run"])),
            JSONArtifact(name="metrics", body=data),
        ]


def report_markdown(rows: int, run: int) -> str:
    return (
        f"# Report (run {run})\n\n*{rows}* rows, ünïcode ✓\n\n"
        "| i | sq |\n|---|----|\n| 1 | 1 |\n"
    )


def chain(run_id: str, length: int = 3, sleeps: float = 0.0) -> list[sd.BaseTask]:
    """Leaf -> Step -> Step ...: ``length`` tasks, upstream first (root last)."""
    tasks: list[sd.BaseTask] = [Leaf(run_id=run_id, sleep_s=sleeps)]
    for i in range(1, length):
        tasks.append(Step(upstream=tasks[-1], add=i, sleep_s=sleeps))
    return tasks


def diamond(run_id: str, sleeps: dict[str, float] | None = None) -> dict[str, sd.BaseTask]:
    """A -> B, A -> C, (B, C) -> D. Returns the four task objects by letter.
    ``sleeps`` maps a letter to seconds its run() sleeps (part of the task ids)."""
    s = sleeps or {}
    a = Leaf(run_id=run_id, sleep_s=s.get("A", 0.0))
    b = Step(upstream=a, add=2, sleep_s=s.get("B", 0.0))
    c = Step(upstream=a, add=3, sleep_s=s.get("C", 0.0))
    d = Join(left=b, right=c, sleep_s=s.get("D", 0.0))
    return {"A": a, "B": b, "C": c, "D": d}


DIAMOND_RESULT = (1 + 2) + (1 + 3)  # D's output value


def gated_chain(run_id: str, gate: str, message: str) -> dict[str, sd.BaseTask]:
    """A (leaf) -> B (gated) -> C: B fails until ``gate`` exists, C needs B."""
    a = Leaf(run_id=run_id)
    b = Gated(upstream=a, gate=gate, message=message)
    c = Step(upstream=b, add=1)
    return {"A": a, "B": b, "C": c}
