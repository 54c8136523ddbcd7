"""Two SDK processes build one DAG at the same instant: the registry's claims
(§5.4 claiming start, §6.5) make every task run exactly once across both."""

from __future__ import annotations

import time

import pytest

import sdk_tasks as st
from conftest import (
    check_build,
    check_ended,
    events,
    executions_by_task,
    ids,
    ledger,
    only_plan,
    run_workers,
    task_executions,
    ts,
    types,
)

SLEEPS = {"A": 1.0, "B": 1.0, "C": 1.0, "D": 1.0}


@pytest.mark.timeout(240)
def test_two_processes_run_each_task_once(api, run_id, exec_log):
    rid = f"{run_id}-pair"
    dag = st.diamond(rid, sleeps=SLEEPS)
    sleeps = ",".join(f"{k}={v}" for k, v in SLEEPS.items())
    start_at = time.time() + 5.0  # both start their build at this instant, after imports
    argv = ["--dag", "diamond", "--run-id", rid, "--sleeps", sleeps, "--start-at", str(start_at)]
    results = run_workers([argv, argv], timeout=200)

    for res in results:
        assert res["status"] == "success", res
        assert res["root"] == str(dag["D"].id), res
        assert res["failed"] == 0 and res["discovered"] == 4, res
        # each build either ran a task or saw it completed by the other one
        assert res["succeeded"] + res["previously_completed"] == 4, res
    assert results[0]["build_id"] != results[1]["build_id"]
    assert sum(r["succeeded"] for r in results) == 4, results

    # exactly once across both processes
    counts = executions_by_task(exec_log)
    assert counts == {t: 1 for t in ids(dag.values())}, (
        f"executions {counts}\n" + "\n".join(r["stderr"][-3000:] for r in results)
    )
    ran_in = {rec["task_id"]: rec["pid"] for rec in st.read_exec_log(exec_log)}
    build_of_pid = {r["pid"]: r["build_id"] for r in results}
    assert set(ran_in.values()) <= set(build_of_pid), (ran_in, build_of_pid)

    # the ledger agrees: one execution per task over both builds, granted to the
    # build whose process ran it, ended completed
    plans = []
    all_rows = []
    for r in results:
        check_build(api, r["build_id"], "completed", [dag["D"]])
        plan = only_plan(api, r["build_id"], [dag["D"]], members=4)
        assert plan["member_counts"] == {"completed": 4}, plan
        plans.append(plan)
        all_rows += ledger(api, r["build_id"])
    # both looked up the one local deployment of STARDAG_CODE_ID (§5.1 look-up-or-insert)
    assert plans[0]["deployment_id"] == plans[1]["deployment_id"], plans
    assert sorted(e["task_id"] for e in all_rows) == sorted(ids(dag.values())), all_rows
    by_task = {e["task_id"]: e for e in all_rows}
    for t in dag.values():
        e = by_task[str(t.id)]
        pid = ran_in[str(t.id)]
        check_ended(e, "completed", pid=pid)
        assert e["build_id"] == build_of_pid[pid], (e, build_of_pid)
        assert [x["id"] for x in task_executions(api, t)] == [e["id"]]
        evs = events(api, t)
        assert types(evs).count("task_started") == 1, evs
        assert types(evs).count("task_completed") == 1, evs
    for up, down in (("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")):
        assert ts(by_task[str(dag[up].id)]["ended_at"]) <= ts(by_task[str(dag[down].id)]["started_at"])
