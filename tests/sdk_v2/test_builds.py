"""The real stardag==0.28.0 ``sd.build`` against the server's /api/v2, read back over
plain HTTP: chain, diamond, complete targets, failure + resume, a fresh build over a
failed task (D33), dynamic dependencies, artifacts."""

from __future__ import annotations

import os
import uuid

import pytest

import stardag as sd
from stardag.registry import APIRegistry

import sdk_tasks as st
from conftest import (
    assert_summary,
    check_build,
    check_ended,
    check_frontier,
    check_task,
    event,
    events,
    executions_by_task,
    ids,
    is_uuid,
    ledger,
    only_plan,
    task_executions,
    ts,
    types,
)

FRESH = ["task_pending", "task_started", "task_completed"]


def delete_target(task) -> None:
    """Remove a task's output file (the local target's URI is its path)."""
    path = task.target().uri
    assert os.path.isabs(path) and os.path.exists(path), path
    os.remove(path)


def exec_pids(exec_log: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for rec in st.read_exec_log(exec_log):
        out.setdefault(rec["task_id"], []).append(rec["pid"])
    return out


def check_fresh_build(api, build_id, tasks, root, exec_log, *, executor: str,
                      description=None) -> tuple[dict, dict[str, dict]]:
    """Everything a build that ran each of ``tasks`` exactly once leaves behind;
    returns the plan and the ledger rows by task id."""
    check_build(api, build_id, "completed", [root], description=description)
    plan = only_plan(api, build_id, [root], members=len(tasks))
    assert plan["member_counts"] == {"completed": len(tasks)}, plan
    check_frontier(api, build_id, plan, "completed", complete=True)

    rows = ledger(api, build_id)
    assert sorted(e["task_id"] for e in rows) == sorted(ids(tasks)), rows
    # default listing: only executions with no end (§5.2) -- none are left
    assert api.get(f"/builds/{build_id}/executions")["executions"] == []
    pids = exec_pids(exec_log)
    by_task = {e["task_id"]: e for e in rows}
    for t in tasks:
        e = by_task[str(t.id)]
        check_ended(e, "completed", pid=pids[str(t.id)][0])
        assert e["executor"] == executor, e
        assert e["plan_id"] == plan["id"] and e["in_current_plan"] is True, e

        row = check_task(api, t, "completed", plan)
        assert row["execution_id"] == e["id"], (row, e)
        assert [x["id"] for x in task_executions(api, t)] == [e["id"]]

        evs = events(api, t)
        assert types(evs) == FRESH, (type(t).__name__, evs)
        for ev in evs:
            assert ev["build_id"] == str(build_id) and ev["plan_id"] == plan["id"], ev
            assert ev["report_applied"] is True, ev
        assert event(evs, "task_started")["execution_id"] == e["id"]
        assert event(evs, "task_completed")["execution_id"] == e["id"]
    return plan, by_task


def assert_runs_after(rows: dict[str, dict], up, down) -> None:
    """The ledger's causal order: an upstream's execution ended before its
    downstream's started (the claim rule, §5.4 rule 9)."""
    assert ts(rows[str(up.id)]["ended_at"]) <= ts(rows[str(down.id)]["started_at"]), (up, down)


# ------------------------------------------------------------------------- tests


def test_linear_chain(api, run_id, exec_log):
    tasks = st.chain(f"{run_id}-chain", length=3)
    root = tasks[-1]
    description = f"sdk v2 chain {run_id}"
    summary = sd.build(root, description=description)
    assert_summary(summary, discovered=3, succeeded=3)
    assert root.load() == 1 + 1 + 2
    assert executions_by_task(exec_log) == {t: 1 for t in ids(tasks)}

    plan, rows = check_fresh_build(api, summary.build_id, tasks, root, exec_log,
                                   executor="sync_thread", description=description)
    for up, down in zip(tasks, tasks[1:]):
        assert_runs_after(rows, up, down)

    # the local deployment the plan is under (§5.1: born activated, app "local")
    dep = api.get(f"/deployments/{plan['deployment_id']}")
    assert (dep["kind"], dep["code_id"], dep["app_name"]) == ("local", os.environ["STARDAG_CODE_ID"], "local")
    ts(dep["activated_at"], "deployment activated_at")
    listed = api.get("/deployments", limit=100)["deployments"]
    assert plan["deployment_id"] in [d["id"] for d in listed]

    # the settings of the plan's scope (§3.1: {} hashes to EMPTY_SETTINGS_HASH)
    assert api.get(f"/settings/{plan['settings_hash']}") == {"hash": plan["settings_hash"], "body": {}}

    # the SDK reads it back and rehydrates the root from the instance body
    registry = APIRegistry()
    try:
        info = registry.task_get(str(root.id))
        assert info.status == "completed"
        again = st.Step.from_registry(root.id, registry=registry)
    finally:
        registry.close()
    assert again.id == root.id and again.load() == root.load()


@pytest.mark.parametrize("engine", ["concurrent", "sequential"])
def test_diamond(api, run_id, exec_log, engine):
    dag = st.diamond(f"{run_id}-diamond-{engine}")
    build = sd.build if engine == "concurrent" else sd.build_sequential
    summary = build(dag["D"])
    assert_summary(summary, discovered=4, succeeded=4)
    assert dag["D"].load() == st.DIAMOND_RESULT
    assert executions_by_task(exec_log) == {t: 1 for t in ids(dag.values())}

    _, rows = check_fresh_build(
        api, summary.build_id, list(dag.values()), dag["D"], exec_log,
        executor="sync_thread" if engine == "concurrent" else "sequential",
    )
    for up, down in (("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")):
        assert_runs_after(rows, dag[up], dag[down])
    if engine == "sequential":  # one at a time: no two executions overlap
        spans = sorted((ts(e["started_at"]), ts(e["ended_at"])) for e in rows.values())
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, spans

    # the task list holds all four, each once
    listed = [t["task_id"] for t in api.get("/tasks", limit=500)["tasks"]]
    for t in dag.values():
        assert listed.count(str(t.id)) == 1, listed


def test_complete_targets_and_deleted_targets(api, run_id, exec_log, target_root):
    """A built DAG re-run runs nothing; the SDK walks from the roots and stops at
    complete targets, so a deleted root target re-runs exactly the root (and a
    deleted upstream target only matters once the walk reaches it)."""
    dag = st.diamond(f"{run_id}-rerun")
    first = sd.build(dag["D"])
    assert_summary(first, discovered=4, succeeded=4)
    plan1, rows1 = check_fresh_build(api, first.build_id, list(dag.values()), dag["D"],
                                     exec_log, executor="sync_thread")

    # 1. everything complete: the walk stops at the root; nothing runs
    again = sd.build(dag["D"])
    assert_summary(again, discovered=1, succeeded=0, previously_completed=1)
    assert again.build_id != first.build_id
    check_build(api, again.build_id, "completed", [dag["D"]])
    assert ledger(api, again.build_id) == []
    # same scope: the closure step admits the root's recorded upstreams (§6.4)
    plan2 = only_plan(api, again.build_id, [dag["D"]], members=4)
    assert plan2["deployment_id"] == plan1["deployment_id"]
    assert plan2["member_counts"] == {"completed": 4}, plan2
    check_frontier(api, again.build_id, plan2, "completed", complete=True)
    d_events = events(api, dag["D"])
    # admission of an existing task (upstream's type, D33), no execution
    assert types(d_events, again.build_id) == ["task_referenced"], d_events
    for t in dag.values():
        assert "task_started" not in types(events(api, t), again.build_id)
        assert [e["id"] for e in task_executions(api, t)] == [rows1[str(t.id)]["id"]]
    assert executions_by_task(exec_log) == {t: 1 for t in ids(dag.values())}

    # 2. B's target deleted: D is still complete, the walk never reaches B
    delete_target(dag["B"])
    third = sd.build(dag["D"])
    assert_summary(third, discovered=1, succeeded=0, previously_completed=1)
    check_build(api, third.build_id, "completed", [dag["D"]])
    assert ledger(api, third.build_id) == []
    check_task(api, dag["B"], "completed")  # nothing told the registry otherwise
    assert executions_by_task(exec_log) == {t: 1 for t in ids(dag.values())}

    # 3. D's target deleted too: D and B are observed missing and run again; A, C not
    delete_target(dag["D"])
    fourth = sd.build(dag["D"])
    assert_summary(fourth, discovered=4, succeeded=2, previously_completed=2)
    assert dag["D"].load() == st.DIAMOND_RESULT
    counts = executions_by_task(exec_log)
    assert counts == {str(dag["A"].id): 1, str(dag["B"].id): 2, str(dag["C"].id): 1,
                      str(dag["D"].id): 2}, counts
    check_build(api, fourth.build_id, "completed", [dag["D"]])
    plan4 = only_plan(api, fourth.build_id, [dag["D"]], members=4)
    rows4 = {e["task_id"]: e for e in ledger(api, fourth.build_id)}
    assert sorted(rows4) == sorted(ids([dag["B"], dag["D"]])), rows4
    pids = exec_pids(exec_log)
    for letter in "BD":
        t = dag[letter]
        e = rows4[str(t.id)]
        check_ended(e, "completed", pid=pids[str(t.id)][1])
        assert e["plan_id"] == plan4["id"]
        # the observation withdrew the old completion (§6.3 step 6), then it ran
        evs = events(api, t)
        assert types(evs, fourth.build_id) == [
            "task_referenced", "task_invalidated", "task_started", "task_completed"
        ], (letter, evs)
        row = check_task(api, t, "completed", plan4)
        assert row["execution_id"] == e["id"]
        hist = task_executions(api, t)
        assert [x["id"] for x in hist] == [e["id"], rows1[str(t.id)]["id"]], hist
        assert [x["build_id"] for x in hist] == [str(fourth.build_id), str(first.build_id)]
    assert_runs_after(rows4, dag["B"], dag["D"])
    for letter in "AC":
        evs = events(api, dag[letter])
        assert "task_started" not in types(evs, fourth.build_id), evs
        assert "task_invalidated" not in types(evs), evs


def failing_chain(run_id: str, tmp_path, tag: str):
    gate = str(tmp_path / f"gate-{tag}")
    message = f"gate closed {run_id} {tag}: ünïcode & 100% /x?y=1#z"
    return st.gated_chain(f"{run_id}-{tag}", gate=gate, message=message), gate, message


def run_until_failure(api, dag, message, exec_log):
    """Build the gated chain with the gate closed: B fails, C is blocked."""
    summary = sd.build(dag["C"], raise_on_failure=False)
    assert str(summary.status) == "failure", repr(summary)
    tc = summary.task_count
    assert (tc.discovered, tc.succeeded, tc.failed, tc.skipped) == (3, 1, 1, 1), repr(summary)
    assert isinstance(summary.error, RuntimeError) and str(summary.error) == message
    assert summary.failed_task is not None and summary.failed_task.id == dag["B"].id
    assert executions_by_task(exec_log) == {str(dag["A"].id): 1, str(dag["B"].id): 1}

    b = check_build(api, summary.build_id, "failed", [dag["C"]])
    # the SDK's failure message names the task; its count is the server's skip-blocked answer
    assert b["error_message"] == (
        f"Task {st.NAMESPACE}.Gated ({dag['B'].id}) failed: RuntimeError: {message}; "
        "1 downstream member(s) blocked"
    ), b
    plan = only_plan(api, summary.build_id, [dag["C"]], members=3)
    assert plan["member_counts"] == {"completed": 1, "failed": 1, "skipped": 1}, plan
    check_frontier(api, summary.build_id, plan, "failed", complete=False)

    rows = {e["task_id"]: e for e in ledger(api, summary.build_id)}
    assert sorted(rows) == sorted(ids([dag["A"], dag["B"]])), rows
    pids = exec_pids(exec_log)
    check_ended(rows[str(dag["A"].id)], "completed", pid=pids[str(dag["A"].id)][0])
    check_ended(rows[str(dag["B"].id)], "failed", pid=pids[str(dag["B"].id)][0])

    check_task(api, dag["A"], "completed", plan)
    failed = check_task(api, dag["B"], "failed", plan)
    assert message in failed["error_message"] and "RuntimeError" in failed["error_message"], failed
    check_task(api, dag["C"], "skipped", plan)
    evs = events(api, dag["B"])
    assert types(evs) == ["task_pending", "task_started", "task_failed"], evs
    assert event(evs, "task_failed")["error_message"] == failed["error_message"]
    assert event(evs, "task_failed")["execution_id"] == rows[str(dag["B"].id)]["id"]
    assert "task_started" not in types(events(api, dag["C"]))
    return summary, plan, rows


def test_failure_then_resume(api, run_id, exec_log, tmp_path):
    dag, gate, message = failing_chain(run_id, tmp_path, "resume")
    failed, plan, rows1 = run_until_failure(api, dag, message, exec_log)

    open(gate, "w").close()
    resumed = sd.build(dag["C"], resume_build_id=failed.build_id)
    assert_summary(resumed, discovered=3, succeeded=2, previously_completed=1)
    assert resumed.build_id == failed.build_id
    assert dag["C"].load() == 1 + 100 + 1
    counts = executions_by_task(exec_log)
    assert counts == {str(dag["A"].id): 1, str(dag["B"].id): 2, str(dag["C"].id): 1}, counts

    build_id = failed.build_id
    b = check_build(api, build_id, "completed", [dag["C"]])
    assert b["error_message"] is None
    # the resume reuses the build's plan for the same scope (§7.1)
    plan_after = only_plan(api, build_id, [dag["C"]], members=3)
    assert plan_after["id"] == plan["id"]
    assert plan_after["member_counts"] == {"completed": 3}, plan_after
    check_frontier(api, build_id, plan_after, "completed", complete=True)

    rows = ledger(api, build_id)
    assert sorted(e["task_id"] for e in rows) == sorted(ids([dag["A"], dag["B"], dag["B"], dag["C"]]))
    pids = exec_pids(exec_log)
    b_runs = sorted((e for e in rows if e["task_id"] == str(dag["B"].id)), key=lambda e: e["started_at"])
    assert b_runs[0]["id"] == rows1[str(dag["B"].id)]["id"]
    check_ended(b_runs[0], "failed")
    check_ended(b_runs[1], "completed", pid=pids[str(dag["B"].id)][1])
    c_run = next(e for e in rows if e["task_id"] == str(dag["C"].id))
    check_ended(c_run, "completed", pid=pids[str(dag["C"].id)][0])
    assert ts(b_runs[1]["ended_at"]) <= ts(c_run["started_at"])

    row = check_task(api, dag["B"], "completed", plan_after)
    assert row["execution_id"] == b_runs[1]["id"]
    assert [e["id"] for e in task_executions(api, dag["B"])] == [b_runs[1]["id"], b_runs[0]["id"]]
    # the resume reset the failed and the skipped member (retry, upstream's event)
    assert types(events(api, dag["B"]), build_id) == [
        "task_pending", "task_started", "task_failed",
        "task_retried", "task_started", "task_completed",
    ]
    c_types = types(events(api, dag["C"]), build_id)
    assert c_types[0] == "task_pending" and c_types[-3:] == [
        "task_retried", "task_started", "task_completed"
    ], c_types
    assert c_types.count("task_started") == 1, c_types
    check_task(api, dag["C"], "completed", plan_after)


def test_fresh_build_reruns_a_task_failed_in_an_earlier_build(api, run_id, exec_log, tmp_path):
    """D33: a claiming start on a FAILED task is granted, so a new ``sd.build`` after
    a fix runs it (no resume of the failed build needed)."""
    dag, gate, message = failing_chain(run_id, tmp_path, "fresh")
    failed, _, rows1 = run_until_failure(api, dag, message, exec_log)

    open(gate, "w").close()
    fresh = sd.build(dag["C"])
    assert_summary(fresh, discovered=3, succeeded=2, previously_completed=1)
    assert fresh.build_id != failed.build_id
    counts = executions_by_task(exec_log)
    assert counts == {str(dag["A"].id): 1, str(dag["B"].id): 2, str(dag["C"].id): 1}, counts

    # the old build keeps its failure; the new one completed
    check_build(api, failed.build_id, "failed", [dag["C"]])
    check_build(api, fresh.build_id, "completed", [dag["C"]])
    plan2 = only_plan(api, fresh.build_id, [dag["C"]], members=3)
    assert plan2["member_counts"] == {"completed": 3}, plan2
    rows2 = {e["task_id"]: e for e in ledger(api, fresh.build_id)}
    assert sorted(rows2) == sorted(ids([dag["B"], dag["C"]])), rows2
    pids = exec_pids(exec_log)
    check_ended(rows2[str(dag["B"].id)], "completed", pid=pids[str(dag["B"].id)][1])
    check_ended(rows2[str(dag["C"].id)], "completed", pid=pids[str(dag["C"].id)][0])
    assert_runs_after(rows2, dag["B"], dag["C"])

    row = check_task(api, dag["B"], "completed", plan2)
    assert row["execution_id"] == rows2[str(dag["B"].id)]["id"]
    hist = task_executions(api, dag["B"])
    assert [(e["build_id"], e["outcome"]) for e in hist] == [
        (str(fresh.build_id), "completed"), (str(failed.build_id), "failed")
    ], hist
    evs = events(api, dag["B"])
    assert types(evs, failed.build_id) == ["task_pending", "task_started", "task_failed"], evs
    assert types(evs, fresh.build_id) == ["task_referenced", "task_started", "task_completed"], evs
    check_task(api, dag["C"], "completed", plan2)


def test_dynamic_dependencies(api, run_id, exec_log):
    root = st.Fanout(run_id=f"{run_id}-dyn", width=3)
    children = st.dynamic_children(root.run_id, root.width)
    summary = sd.build(root)
    assert_summary(summary, discovered=1 + len(children), succeeded=1 + len(children))
    assert root.load() == (0 + 1 + 2) + (0 + 10)
    assert executions_by_task(exec_log) == {t: 1 for t in ids([root, *children])}

    build_id = summary.build_id
    check_build(api, build_id, "completed", [root])
    # yielded tasks (and the yielded step's static upstream) became members (§5.4 yield)
    plan = only_plan(api, build_id, [root], members=1 + len(children))
    assert plan["member_counts"] == {"completed": 1 + len(children)}, plan
    check_frontier(api, build_id, plan, "completed", complete=True)

    rows = {e["task_id"]: e for e in ledger(api, build_id)}
    assert sorted(rows) == sorted(ids([root, *children])), rows
    pids = exec_pids(exec_log)
    for t in (root, *children):
        check_ended(rows[str(t.id)], "completed", pid=pids[str(t.id)][0])
        check_task(api, t, "completed", plan)
    # the parent kept its claim across the yield (suspend: false): one execution that
    # spans its children's
    parent = rows[str(root.id)]
    assert [e["id"] for e in task_executions(api, root)] == [parent["id"]]
    for c in children:
        assert ts(parent["started_at"]) <= ts(rows[str(c.id)]["started_at"])
        assert ts(rows[str(c.id)]["ended_at"]) <= ts(parent["ended_at"])
    assert_runs_after(rows, children[0], children[-1])  # the step over leaf 0

    evs = events(api, root)
    assert types(evs) == ["task_pending", "task_started", "task_yielded", "task_completed"], evs
    assert event(evs, "task_yielded")["execution_id"] == parent["id"]
    for c in children:
        assert types(events(api, c)) == FRESH, c


def test_artifacts(api, run_id, exec_log):
    report = st.Report(run_id=f"{run_id}-artifacts", rows=3)
    summary = sd.build(report)
    assert_summary(summary, discovered=1, succeeded=1)
    data = report.load()
    assert data["run"] == 1

    def read():
        body = api.get(f"/tasks/{report.id}/artifacts")
        arts = {(a["artifact_type"], a["name"]): a for a in body["artifacts"]}
        assert len(arts) == len(body["artifacts"]) == 2, body
        assert set(arts) == {("markdown", "summary"), ("json", "metrics")}, body
        for a in arts.values():
            assert a["task_id"] == str(report.id), a
            assert is_uuid(a["id"]), a
            ts(a["created_at"], "artifact created_at")
        return arts[("markdown", "summary")], arts[("json", "metrics")]

    md, js = read()
    # markdown travels and is stored as {"content": ...} (§3.2)
    assert md["body"] == {"content": st.report_markdown(3, run=1)}, md
    assert js["body"] == data, js
    check_build(api, summary.build_id, "completed", [report])
    assert types(events(api, report)) == FRESH  # uploading artifacts appends no event

    # re-run (target deleted): the upload replaces the bodies of the same rows (§5.4)
    delete_target(report)
    again = sd.build(report)
    assert_summary(again, discovered=1, succeeded=1)
    data2 = report.load()
    assert data2["run"] == 2
    md2, js2 = read()
    assert md2["body"] == {"content": st.report_markdown(3, run=2)}, md2
    assert js2["body"] == data2, js2
    for old, new in ((md, md2), (js, js2)):
        assert (new["id"], new["created_at"]) == (old["id"], old["created_at"]), (old, new)

    # the SDK's own read of the same route
    registry = APIRegistry()
    try:
        sdk_arts = {a.name: a for a in registry.task_list_artifacts(str(report.id))}
    finally:
        registry.close()
    assert sdk_arts["metrics"].body == data2
    assert sdk_arts["summary"].artifact_type == "markdown"


def test_refusals_for_unknown_ids(api):
    from conftest import refusal

    build_id, plan_id, task_id = uuid.uuid4(), uuid.uuid4(), str(uuid.uuid4())
    d = refusal(api.v2("GET", f"/builds/{build_id}"), 404, "unknown_build")
    assert d["build_id"] == str(build_id), d
    refusal(api.v2("GET", f"/builds/{build_id}/frontier"), 404, "unknown_build")
    refusal(api.v2("GET", f"/plans/{plan_id}"), 404, "unknown_plan")
    refusal(api.v2("GET", f"/tasks/{task_id}"), 404, "unknown_task")
    refusal(api.v2("GET", f"/tasks/{task_id}/artifacts"), 404, "unknown_task")
    refusal(api.v2("GET", f"/settings/{uuid.uuid4()}"), 404, "unknown_settings")
