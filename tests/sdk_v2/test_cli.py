"""The read commands of the stardag 0.28.0 CLI (``stardag/_cli``), run as
subprocesses of the venv's ``stardag`` entry point against the server (§5.6)."""

from __future__ import annotations

import uuid

import pytest

import stardag as sd

import sdk_tasks as st
from conftest import (
    EMPTY_SETTINGS_HASH,
    assert_summary,
    cli_json,
    ids,
    ledger,
    only_plan,
    refusal,
    run_cli,
)


@pytest.fixture(scope="module")
def built(run_id):
    """A finished 3-task chain for the CLI to read."""
    tasks = st.chain(f"{run_id}-cli", length=3)
    summary = sd.build(tasks[-1])
    assert_summary(summary, discovered=3, succeeded=3)
    return tasks, str(summary.build_id)


@pytest.fixture(scope="module")
def plan(api, built):
    tasks, build_id = built
    return only_plan(api, build_id, [tasks[-1]], members=3)


def test_builds_list(built):
    tasks, build_id = built
    page = cli_json("builds", "list", "--limit", "50")
    listed = [b["id"] for b in page["builds"]]
    assert build_id in listed, page
    mine = next(b for b in page["builds"] if b["id"] == build_id)
    assert mine["status"] == "completed" and mine["root_task_ids"] == [str(tasks[-1].id)], mine
    assert page["total"] >= len(page["builds"]) >= 1, page
    completed = cli_json("builds", "list", "--status", "completed", "--limit", "50")
    assert build_id in [b["id"] for b in completed["builds"]], completed
    assert all(b["status"] == "completed" for b in completed["builds"]), completed
    failed = cli_json("builds", "list", "--status", "failed", "--limit", "50")
    assert build_id not in [b["id"] for b in failed["builds"]], failed
    assert build_id in run_cli("builds", "list", "--limit", "50").stdout


def test_builds_show(built, plan):
    tasks, build_id = built
    shown = cli_json("builds", "show", build_id)
    assert shown["id"] == build_id and shown["status"] == "completed", shown
    active = shown["active_plan"]
    assert active["plan_id"] == plan["id"], shown
    assert active["settings_hash"] == EMPTY_SETTINGS_HASH and active["settings"] == {}, shown
    assert (active["sealed"], active["plan_complete"]) == (True, True), shown
    assert (active["runnable"], active["running"], active["discovery_jobs"]) == (0, 0, 0), shown
    assert (active["unended_executions"], active["orphaned_executions"]) == (0, 0), shown
    text = run_cli("builds", "show", build_id).stdout
    assert build_id in text and plan["id"] in text and str(tasks[-1].id) in text, text


def test_builds_frontier(built, plan):
    tasks, build_id = built
    f = cli_json("builds", "frontier", build_id)
    assert f["build_id"] == build_id and f["plan_id"] == plan["id"], f
    assert f["build_status"] == "completed" and f["plan_complete"] is True, f
    assert (f["runnable"], f["running"], f["discovery_jobs"]) == ([], [], []), f
    assert f["needs_tick"] is False, f  # a build nobody schedules reactively
    assert f["member_counts"] == {"completed": 3}, f
    assert (f["roots_completed"], f["roots_total"]) == (1, 1), f
    text = run_cli("builds", "frontier", build_id).stdout
    assert build_id in text and plan["id"] in text, text


def test_tasks_list_and_show(built):
    tasks, build_id = built
    page = cli_json("tasks", "list", "--limit", "100")
    listed = {t["task_id"]: t for t in page["tasks"]}
    for t in tasks:
        assert listed[str(t.id)]["status"] == "completed", page
        assert listed[str(t.id)]["task_name"] == type(t).__name__
    done = cli_json("tasks", "list", "--status", "completed", "--limit", "100")
    assert set(ids(tasks)) <= {t["task_id"] for t in done["tasks"]}, done
    assert all(t["status"] == "completed" for t in done["tasks"]), done
    text = run_cli("tasks", "list", "--limit", "100").stdout
    for t in tasks:
        assert str(t.id) in text, text

    root = tasks[-1]
    shown = cli_json("tasks", "show", str(root.id), "--include-ended")
    assert shown["task_id"] == str(root.id) and shown["status"] == "completed", shown
    assert [e["build_id"] for e in shown["executions"]] == [build_id], shown
    assert [e["event_type"] for e in shown["events"]] == [
        "task_pending", "task_started", "task_completed"
    ], shown
    assert shown["instances"][0]["instance_hash"] == str(root.instance_hash), shown
    assert shown["artifacts"] == [] and shown["structure_diverged"] == [], shown
    # default: only unended executions
    assert cli_json("tasks", "show", str(root.id))["executions"] == []
    text = run_cli("tasks", "show", str(root.id), "--include-ended").stdout
    assert str(root.id) in text and shown["executions"][0]["id"] in text, text


def test_executions_list(api, built):
    tasks, build_id = built
    rows = {e["id"]: e for e in ledger(api, build_id)}
    by_build = cli_json("executions", "list", "--build", build_id, "--include-ended")
    assert by_build["build_id"] == build_id, by_build
    assert sorted(e["id"] for e in by_build["executions"]) == sorted(rows), by_build
    assert sorted(e["task_id"] for e in by_build["executions"]) == sorted(ids(tasks)), by_build
    unended = cli_json("executions", "list", "--build", build_id)
    assert unended["executions"] == [], unended
    text = run_cli("executions", "list", "--build", build_id, "--include-ended").stdout
    for e in rows:
        assert e in text, text

    leaf = tasks[0]
    by_task = cli_json("executions", "list", "--task", str(leaf.id), "--include-ended")
    assert by_task["task_id"] == str(leaf.id), by_task
    assert [e["task_id"] for e in by_task["executions"]] == [str(leaf.id)], by_task
    assert by_task["executions"][0]["id"] in rows
    assert by_task["executions"][0]["id"] in run_cli(
        "executions", "list", "--task", str(leaf.id), "--include-ended").stdout


def test_plans_list_and_show(built, plan):
    tasks, build_id = built
    listed = cli_json("plans", "list", "--build", build_id)
    assert listed["build_id"] == build_id, listed
    assert [p["id"] for p in listed["plans"]] == [plan["id"]], listed
    assert listed["plans"][0]["member_count"] == 3, listed
    assert plan["id"] in run_cli("plans", "list", "--build", build_id).stdout

    shown = cli_json("plans", "show", plan["id"])
    assert shown["id"] == plan["id"] and shown["build_id"] == build_id, shown
    assert shown["settings"] == {} and shown["plan_complete"] is True, shown
    assert [r["task_id"] for r in shown["roots"]] == [str(tasks[-1].id)], shown
    assert shown["outstanding"] == {"discovery_jobs": 0, "runnable": 0, "running": 0}, shown
    text = run_cli("plans", "show", plan["id"]).stdout
    assert plan["id"] in text and build_id in text and str(tasks[-1].id) in text, text


def test_deployments_list(plan):
    listed = cli_json("deployments", "list", "--kind", "local")
    assert plan["deployment_id"] in [d["id"] for d in listed["deployments"]], listed
    shown = cli_json("deployments", "show", plan["deployment_id"])
    assert shown["id"] == plan["deployment_id"] and shown["kind"] == "local", shown


def test_unknown_ids_fail_the_command(api):
    for args, path, code in (
        (("builds", "show"), "/builds/{}", "unknown_build"),
        (("tasks", "show"), "/tasks/{}", "unknown_task"),
        (("plans", "show"), "/plans/{}", "unknown_plan"),
    ):
        missing = str(uuid.uuid4())
        # the route exists and refuses the id (not a 404 of an unknown route)
        refusal(api.v2("GET", path.format(missing)), 404, code)
        proc = run_cli(*args, missing, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Error" in proc.stderr, (args, proc.stderr)
