"""Authentication and tenancy of /api/v2 (§1.2, D9, D14, D31, D33): API keys of two
environments see only their own builds and tasks, and the SDK's profile login (a
local session exchanged for an internal token, ``?environment_id=`` on every call)
builds in the environment it names.

A second environment and its API key are made through the v1 identity API as the
admin of ``initial-credentials`` (shared/spec/v1-identity.md §4.2, §4.7, §4.8)."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

import stardag as sd
from stardag.exceptions import InvalidAPIKeyError, NotFoundError
from stardag.registry import APIRegistry

import sdk_tasks as st
from conftest import (
    URL,
    Api,
    assert_summary,
    check_build,
    check_ended,
    check_task,
    events,
    executions_by_task,
    ids,
    is_uuid,
    ledger,
    only_plan,
    refusal,
    run_cli,
    run_workers,
    task_executions,
    types,
)

ADMIN_EMAIL = os.environ.get("SDK_TEST_ADMIN_EMAIL", "")
ADMIN_PASSWORD = os.environ.get("SDK_TEST_ADMIN_PASSWORD", "")
WORKSPACE_ID = os.environ.get("SDK_TEST_WORKSPACE_ID", "")
ENVIRONMENT_ID = os.environ.get("SDK_TEST_ENVIRONMENT_ID", "")
SECOND_ENV_SLUG = "sdk-v2-second"

needs_admin = pytest.mark.skipif(
    not (ADMIN_EMAIL and ADMIN_PASSWORD and WORKSPACE_ID),
    reason="SDK_TEST_ADMIN_EMAIL / _PASSWORD / SDK_TEST_WORKSPACE_ID not set (run.sh reads them "
    "from initial-credentials)",
)


def login() -> str:
    """``POST /api/v1/auth/login`` as the bootstrap admin → a local session token."""
    status, body = Api(URL).request(
        "POST", "/api/v1/auth/login", body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert status == 200 and body.get("session_token"), (status, body)
    return body["session_token"]


def exchange(session: str) -> dict:
    """``POST /api/v1/auth/exchange {workspace_id}`` → a workspace-scoped internal token."""
    status, body = Api(URL).request(
        "POST", "/api/v1/auth/exchange", body={"workspace_id": WORKSPACE_ID}, token=session
    )
    assert status == 200, (status, body)
    assert body["token_type"].lower() == "bearer" and body["access_token"], body
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0, body
    return body


@pytest.fixture(scope="module")
def second_env(run_id) -> dict:
    """An environment besides the admin's default one (made once per server, reused
    on re-runs: a workspace holds at most 6) and a fresh API key of it."""
    session = login()
    token = exchange(session)["access_token"]
    ui = Api(URL, token=token)
    base = f"/api/v1/ui/workspaces/{WORKSPACE_ID}/environments"
    status, envs = ui.request("GET", base)
    assert status == 200 and isinstance(envs, list), (status, envs)
    env = next((e for e in envs if e["slug"] == SECOND_ENV_SLUG), None)
    if env is None:
        status, env = ui.request("POST", base, body={"name": "SDK v2 second", "slug": SECOND_ENV_SLUG})
        assert status == 201, (status, env)
    assert is_uuid(env["id"]) and env["id"] != ENVIRONMENT_ID, env
    status, key = ui.request("POST", f"{base}/{env['id']}/api-keys", body={"name": f"sdk-v2 {run_id}"})
    assert status == 201 and key["key"].startswith("sk_"), (status, key)
    assert key["environment_id"] == env["id"], key
    return {"id": env["id"], "key": key["key"], "session": session, "token": token}


def worker_env(**overrides) -> dict:
    env = dict(os.environ)
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


# ------------------------------------------------------------------------ tests


def test_authentication(api):
    anon = Api(URL)
    status, body = anon.v2("GET", "/builds")
    assert status == 401 and "detail" in body, (status, body)
    bad = Api(URL, "sk_000000_" + "A" * 32)
    status, body = bad.v2("GET", "/builds")
    assert status == 401, (status, body)
    message = body["detail"]["message"] if isinstance(body["detail"], dict) else body["detail"]
    assert "api key" in message.lower(), body  # the SDK maps it by this substring (§1.4)
    # ... and the SDK does
    registry = APIRegistry(api_key="sk_000000_" + "A" * 32)
    try:
        with pytest.raises(InvalidAPIKeyError):
            registry.build_get(uuid.uuid4())
    finally:
        registry.close()
    # a good key: the refusal body is readable by the SDK (NotFoundError with the code)
    registry = APIRegistry()
    try:
        with pytest.raises(NotFoundError) as err:
            registry.build_get(uuid.uuid4())
    finally:
        registry.close()
    assert err.value.code == "unknown_build", err.value.payload


@needs_admin
def test_environments_are_isolated(api, run_id, second_env, exec_log):
    key2 = second_env["key"]
    api2 = Api(URL, key2)

    # one build in each environment
    tasks1 = st.chain(f"{run_id}-iso-1", length=2)
    s1 = sd.build(tasks1[-1])
    assert_summary(s1, discovered=2, succeeded=2)
    rid2 = f"{run_id}-iso-2"
    tasks2 = st.chain(rid2, length=2)
    [r2] = run_workers([["--dag", "chain", "--length", "2", "--run-id", rid2]],
                       env=worker_env(STARDAG_API_KEY=key2))
    assert r2["status"] == "success" and (r2["discovered"], r2["succeeded"]) == (2, 2), r2
    b1, b2 = str(s1.build_id), r2["build_id"]
    assert executions_by_task(exec_log) == {t: 1 for t in ids([*tasks1, *tasks2])}

    check_build(api, b1, "completed", [tasks1[-1]])
    check_build(api2, b2, "completed", [tasks2[-1]])
    plan1 = only_plan(api, b1, [tasks1[-1]], members=2)
    plan2 = only_plan(api2, b2, [tasks2[-1]], members=2)
    # each environment has its own local deployment for the same code id
    assert plan1["deployment_id"] != plan2["deployment_id"], (plan1, plan2)
    for t in tasks2:
        check_task(api2, t, "completed", plan2)
    assert len(ledger(api2, b2)) == 2

    # D9: the other environment's ids answer exactly like missing ones
    for mine, other, build, plan, tasks in ((api, api2, b2, plan2, tasks2),
                                            (api2, api, b1, plan1, tasks1)):
        d = refusal(mine.v2("GET", f"/builds/{build}"), 404, "unknown_build")
        assert d["build_id"] == build, d
        for sub in ("frontier", "plans", "executions"):
            refusal(mine.v2("GET", f"/builds/{build}/{sub}"), 404, "unknown_build")
        refusal(mine.v2("POST", f"/builds/{build}/cancel"), 404, "unknown_build")
        refusal(mine.v2("GET", f"/plans/{plan['id']}"), 404, "unknown_plan")
        refusal(mine.v2("GET", f"/plans/{plan['id']}/roots"), 404, "unknown_plan")
        refusal(mine.v2("POST", f"/plans/{plan['id']}/seal"), 404, "unknown_plan")
        refusal(mine.v2("POST", f"/plans/{plan['id']}/members/{tasks[0].id}/retry"), 404, "unknown_plan")
        refusal(mine.v2("GET", f"/deployments/{plan['deployment_id']}"), 404, "unknown_deployment")
        for t in tasks:
            refusal(mine.v2("GET", f"/tasks/{t.id}"), 404, "unknown_task")
            for sub in ("events", "executions", "artifacts"):
                refusal(mine.v2("GET", f"/tasks/{t.id}/{sub}"), 404, "unknown_task")
        # lists hold only their own environment's rows
        builds = [b["id"] for b in mine.get("/builds", limit=500)["builds"]]
        assert build not in builds, builds
        listed = [t["task_id"] for t in mine.get("/tasks", limit=500)["tasks"]]
        assert not set(ids(tasks)) & set(listed), listed
        deps = [d["id"] for d in mine.get("/deployments", limit=500)["deployments"]]
        assert plan["deployment_id"] not in deps, deps
        # and the owner still sees it, untouched
        assert other.get(f"/builds/{build}")["status"] == "completed"
    assert b1 in [b["id"] for b in api.get("/builds", limit=500)["builds"]]
    assert b2 in [b["id"] for b in api2.get("/builds", limit=500)["builds"]]

    # the CLI with the second key cannot see the first environment's build
    proc = run_cli("builds", "show", b1, env=worker_env(STARDAG_API_KEY=key2), check=False)
    assert proc.returncode == 1 and b1 not in proc.stdout, (proc.stdout, proc.stderr)

    # one task id in both environments is two rows: the first environment ran it,
    # the second only observed its (shared) target complete
    leaf = tasks1[0]
    [r3] = run_workers([["--dag", "chain", "--length", "1", "--run-id", f"{run_id}-iso-1"]],
                       env=worker_env(STARDAG_API_KEY=key2))
    assert r3["status"] == "success" and r3["root"] == str(leaf.id), r3
    assert (r3["discovered"], r3["previously_completed"], r3["succeeded"]) == (1, 1, 0), r3
    check_build(api2, r3["build_id"], "completed", [leaf])
    check_task(api2, leaf, "completed")
    assert task_executions(api2, leaf) == []
    assert types(events(api2, leaf)) == ["task_pending", "task_observed_complete"]
    assert len(task_executions(api, leaf)) == 1
    assert types(events(api, leaf)) == ["task_pending", "task_started", "task_completed"]
    assert executions_by_task(exec_log) == {t: 1 for t in ids([*tasks1, *tasks2])}


def write_profile(home, env_id: str, session: str) -> None:
    """What ``stardag auth login`` against a local-auth registry leaves behind: a
    registry and a profile in ~/.stardag/config.toml, and the session token in
    ~/.stardag/credentials/<registry>__<user>.json (stardag/registry/_auth.py)."""
    sd_dir = home / ".stardag"
    (sd_dir / "credentials").mkdir(parents=True)
    (sd_dir / "config.toml").write_text(
        "[registry.selfhost]\n"
        f'url = "{URL}"\n\n'
        "[profile.sdk-v2]\n"
        'registry = "selfhost"\n'
        f'user = "{ADMIN_EMAIL}"\n'
        f'workspace = "{WORKSPACE_ID}"\n'
        f'environment = "{env_id}"\n\n'
        "[default]\n"
        'profile = "sdk-v2"\n'
    )
    user = ADMIN_EMAIL.replace("@", "_at_").replace("/", "_").replace("\\", "_").replace(":", "_")
    cred = sd_dir / "credentials" / f"selfhost__{user}.json"
    cred.write_text(json.dumps({
        "auth_mode": "local",
        "session_token": session,
        "session_expires_at": time.time() + 3600,
    }))
    cred.chmod(0o600)


@needs_admin
@pytest.mark.timeout(180)
def test_profile_login_bearer_token(api, run_id, second_env, exec_log, tmp_path):
    """The SDK without an API key: its profile names the registry, workspace and
    environment; it exchanges the stored local session for an internal token itself
    and sends ``Authorization: Bearer`` + ``?environment_id=`` (§1.2)."""
    home = tmp_path / "home"
    write_profile(home, second_env["id"], second_env["session"])
    env = worker_env(HOME=str(home), STARDAG_API_KEY=None, STARDAG_API_URL=None)
    rid = f"{run_id}-bearer"
    tasks = st.chain(rid, length=2)
    [res] = run_workers([["--dag", "chain", "--length", "2", "--run-id", rid]], env=env)
    assert res["auth"] == "StardagTokenAuth", res  # not an API key
    assert res["environment_id"] == second_env["id"], res
    assert res["status"] == "success" and (res["discovered"], res["succeeded"]) == (2, 2), res
    # the SDK cached the token it got from /auth/exchange
    caches = list((home / ".stardag" / "access-token-cache").glob("selfhost__*.json"))
    assert len(caches) == 1, caches

    build_id = res["build_id"]
    api2 = Api(URL, second_env["key"])
    check_build(api2, build_id, "completed", [tasks[-1]])
    plan = only_plan(api2, build_id, [tasks[-1]], members=2)
    rows = {e["task_id"]: e for e in ledger(api2, build_id)}
    assert sorted(rows) == sorted(ids(tasks)), rows
    for t in tasks:
        check_ended(rows[str(t.id)], "completed", pid=res["pid"])
        check_task(api2, t, "completed", plan)
    refusal(api.v2("GET", f"/builds/{build_id}"), 404, "unknown_build")
    assert executions_by_task(exec_log) == {t: 1 for t in ids(tasks)}

    # the same reads with the internal token over plain HTTP
    token = json.loads(caches[0].read_text())["access_token"]
    bearer = Api(URL, token=token, environment_id=second_env["id"])
    assert bearer.get(f"/builds/{build_id}")["status"] == "completed"
    assert build_id in [b["id"] for b in bearer.get("/builds", limit=500)["builds"]]
    # another environment of the workspace: the build is not there (D9)
    other = Api(URL, token=token, environment_id=ENVIRONMENT_ID)
    refusal(other.v2("GET", f"/builds/{build_id}"), 404, "unknown_build")
    # no environment_id → 400; an unknown environment → 404 (v1-identity §3.2 mode S, D9)
    status, body = Api(URL, token=token).v2("GET", "/builds")
    assert status == 400 and "environment_id" in json.dumps(body), (status, body)
    status, body = Api(URL, token=token, environment_id=str(uuid.uuid4())).v2("GET", "/builds")
    assert status == 404 and "Environment not found" in json.dumps(body), (status, body)

    # the CLI under the same profile
    shown = json.loads(run_cli("builds", "show", build_id, "--json", env=env).stdout)
    assert shown["id"] == build_id and shown["status"] == "completed", shown
