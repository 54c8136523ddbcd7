"""Shared plumbing of tests/sdk_v2: configuration, a plain HTTP client for /api/v2
and /api/v1, and the read-back checks every scenario uses.

The server is NOT started here; ``tests/sdk_v2/run.sh`` starts the release binary and
exports:

    SDK_TEST_URL             base URL of the server (http://127.0.0.1:PORT)
    SDK_TEST_API_KEY         an API key (sk_...) of the admin's default environment
    SDK_TEST_ADMIN_EMAIL / SDK_TEST_ADMIN_PASSWORD / SDK_TEST_WORKSPACE_ID /
    SDK_TEST_ENVIRONMENT_ID  the rest of <data_dir>/initial-credentials
    SDK_TEST_CLI             the venv's `stardag` entry point
    STARDAG_API_URL / STARDAG_API_KEY / STARDAG_TARGET_ROOTS / STARDAG_CODE_ID / HOME
                             the SDK's own configuration

Every check here reads the server over plain HTTP (``X-API-Key``), never through the
SDK, and compares with shared/spec/v2-registry.md (section numbers in comments).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

URL = (os.environ.get("SDK_TEST_URL") or os.environ.get("STARDAG_API_URL") or "").rstrip("/")
API_KEY = os.environ.get("SDK_TEST_API_KEY") or os.environ.get("STARDAG_API_KEY") or ""
CONFIGURED = bool(URL and API_KEY)
if CONFIGURED:
    # before stardag reads its configuration (cached on first use)
    os.environ["STARDAG_API_URL"] = URL
    os.environ["STARDAG_API_KEY"] = API_KEY
    os.environ.setdefault("STARDAG_CODE_ID", "sdk-v2-compat-test")
    if not os.environ.get("STARDAG_TARGET_ROOTS"):
        os.environ["STARDAG_TARGET_ROOTS"] = json.dumps(
            {"default": tempfile.mkdtemp(prefix="sdk-v2-targets-")}
        )

CODE_ID = os.environ.get("STARDAG_CODE_ID", "")
CLI = os.environ.get("SDK_TEST_CLI") or os.path.join(os.path.dirname(sys.executable), "stardag")
WORKER = os.path.join(HERE, "sdk_worker.py")

#: settings_hash of ``{}`` (§3.1): what every plan of a plain ``sd.build`` is under
EMPTY_SETTINGS_HASH = "11406eac-39d0-5b1b-9423-cfb4a1454543"
#: D8: RFC 3339 UTC, exactly 6 fractional digits, 'Z'
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TERMINAL = ("completed", "failed", "cancelled")


def pytest_collection_modifyitems(config, items):
    if not CONFIGURED:
        skip = pytest.mark.skip(reason="SDK_TEST_URL / SDK_TEST_API_KEY not set (run tests/sdk_v2/run.sh)")
        for item in items:
            item.add_marker(skip)


# --------------------------------------------------------------------------- HTTP


class Api:
    """Plain HTTP against the server: an API key, or a bearer token (then
    ``environment_id`` goes in the query, as the SDK's profile login sends it)."""

    def __init__(self, base: str, key: str | None = None, token: str | None = None,
                 environment_id: str | None = None):
        self.base = base
        self.key = key
        self.token = token
        self.environment_id = environment_id

    def request(self, method: str, path: str, params: dict | None = None, body=None,
                token: str | None = None):
        params = dict(params or {})
        if self.environment_id and path.startswith("/api/v2"):
            params.setdefault("environment_id", self.environment_id)
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if self.key:
            req.add_header("X-API-Key", self.key)
        bearer = token or self.token
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, payload

    def v2(self, method: str, path: str, params: dict | None = None, body=None):
        return self.request(method, "/api/v2" + path, params, body)

    def get(self, path: str, **params):
        params = {k: ("true" if v is True else "false" if v is False else v) for k, v in params.items()}
        status, payload = self.v2("GET", path, params or None)
        assert status == 200, f"GET /api/v2{path} {params or ''} -> {status}: {payload!r}"
        return payload


@pytest.fixture(scope="session")
def api() -> Api:
    return Api(URL, API_KEY)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Salts every task id of this session: re-running against one server is safe."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def exec_log(tmp_path, monkeypatch) -> str:
    import sdk_tasks as st

    path = str(tmp_path / "executions.jsonl")
    monkeypatch.setenv(st.EXEC_LOG_ENV, path)
    return path


@pytest.fixture(scope="session")
def target_root() -> str:
    return json.loads(os.environ["STARDAG_TARGET_ROOTS"])["default"]


# ------------------------------------------------------------------ subprocesses


def run_workers(argvs: list[list[str]], env: dict | None = None, timeout: float = 150) -> list[dict]:
    """Start one ``sdk_worker.py`` per argv at once; wait for all; return their summaries."""
    procs = [
        subprocess.Popen([sys.executable, WORKER, *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env or dict(os.environ))
        for argv in argvs
    ]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"worker failed ({p.returncode}):\n{out}\n{err}"
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            assert lines, f"worker printed no summary:\n{out}\n{err}"
            res = json.loads(lines[-1])
            res["stderr"] = err
            results.append(res)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def run_cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The venv's ``stardag`` entry point, as a user runs it (wide, uncoloured output)."""
    full_env = dict(env or os.environ)
    full_env.update({"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    proc = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=90, env=full_env)
    if check:
        assert proc.returncode == 0, (
            f"stardag {' '.join(args)} -> exit {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def cli_json(*args: str, env: dict | None = None):
    proc = run_cli(*args, "--json", env=env)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"stardag {' '.join(args)} --json printed no JSON document:\n{proc.stdout}\n{proc.stderr}")


# ------------------------------------------------------------------ SDK summaries


def assert_summary(summary, *, status="success", discovered, succeeded,
                   previously_completed=0, failed=0):
    assert str(summary.status) == status, repr(summary)
    tc = summary.task_count
    assert (tc.discovered, tc.succeeded, tc.previously_completed, tc.failed) == (
        discovered, succeeded, previously_completed, failed,
    ), repr(summary)
    assert summary.build_id is not None
    if status == "success":
        assert summary.error is None, repr(summary.error)


def executions_by_task(exec_log: str) -> dict[str, int]:
    import sdk_tasks as st

    counts: dict[str, int] = {}
    for rec in st.read_exec_log(exec_log):
        counts[rec["task_id"]] = counts.get(rec["task_id"], 0) + 1
    return counts


def ids(tasks) -> list[str]:
    return [str(t.id) for t in tasks]


# ------------------------------------------------------------------ read-back checks


def ts(value, what="timestamp") -> datetime:
    assert isinstance(value, str) and TS_RE.match(value), f"{what}: bad timestamp {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def refusal(status_payload, status: int, code: str) -> dict:
    """A refusal (§1.4): the status and ``{"detail": {"code", "message", ...}}``."""
    got_status, payload = status_payload
    assert got_status == status, f"expected {status} {code}, got {got_status}: {payload!r}"
    assert isinstance(payload, dict) and isinstance(payload.get("detail"), dict), payload
    detail = payload["detail"]
    assert detail.get("code") == code, payload
    assert isinstance(detail.get("message"), str) and detail["message"], payload
    return detail


def check_build(api: Api, build_id, status: str, roots, description=None) -> dict:
    """``GET /builds/{id}`` (§4 Build, §6.1, upstream build fields per D33)."""
    b = api.get(f"/builds/{build_id}")
    assert b["id"] == str(build_id)
    assert b["status"] == status, b
    assert b["root_task_ids"] == sorted({str(r.id) for r in roots}), b
    assert isinstance(b["name"], str) and b["name"], b
    assert b.get("description") == description, b
    created = ts(b["created_at"], "build created_at")
    assert ts(b["started_at"], "build started_at") == created, "started_at must equal created_at"
    assert ts(b["last_active_at"], "build last_active_at") >= created
    if status in TERMINAL:
        assert ts(b["completed_at"], "build completed_at") >= created, b
    else:
        assert b.get("completed_at") is None, b
    if status == "failed":
        assert isinstance(b["error_message"], str) and b["error_message"], b
    else:
        assert b.get("error_message") is None, b
    assert isinstance(b.get("is_resumed", False), bool)
    return b


def ledger(api: Api, build_id) -> list[dict]:
    """Every execution of the build (``include_ended=true``), checked field by field."""
    rows = api.get(f"/builds/{build_id}/executions", include_ended=True)["executions"]
    for e in rows:
        assert is_uuid(e["id"]), e
        assert e["build_id"] == str(build_id), e
        assert is_uuid(e["plan_id"]) and is_uuid(e["instance_id"]), e
        ts(e["started_at"], "execution started_at")
    assert len({e["id"] for e in rows}) == len(rows), f"duplicate executions: {rows}"
    return rows


def check_ended(e: dict, outcome: str, pid: int | None = None) -> None:
    """An execution whose own report ended it with ``outcome`` (§5.4 report rules):
    both ledger ends written, the claim closed with the same outcome."""
    assert e["outcome"] == outcome, e
    assert e["claim_outcome"] == outcome, e
    started = ts(e["started_at"])
    assert ts(e["ended_at"], "execution ended_at") >= started, e
    assert ts(e["claim_released_at"], "execution claim_released_at") >= started, e
    if pid is not None:
        # the claiming start's executor fields (in-process: executor_ref = host:pid)
        assert e["executor_ref"] == f"{socket.gethostname()}:{pid}", e


def events(api: Api, task) -> list[dict]:
    """``GET /tasks/{id}/events``, oldest first (§5.5)."""
    evs = api.get(f"/tasks/{task.id}/events", limit=500)["events"]
    prev = None
    for e in evs:
        assert e["task_id"] in (None, str(task.id)), e
        assert isinstance(e["event_type"], str) and e["event_type"] == e["event_type"].lower(), e
        at = ts(e["created_at"], "event created_at")
        assert prev is None or at >= prev, f"events are not oldest first: {evs}"
        prev = at
    return evs


def types(evs, build_id=None) -> list[str]:
    return [e["event_type"] for e in evs if build_id is None or e.get("build_id") == str(build_id)]


def event(evs, event_type: str, build_id=None) -> dict:
    found = [e for e in evs if e["event_type"] == event_type
             and (build_id is None or e.get("build_id") == str(build_id))]
    assert len(found) == 1, f"expected one {event_type} event (build {build_id}): {evs}"
    return found[0]


def only_plan(api: Api, build_id, roots, members: int) -> dict:
    """``GET /builds/{id}/plans`` of a plain ``sd.build``: one plan, generation 1,
    active and sealed, under the local deployment of STARDAG_CODE_ID and settings
    ``{}`` (§4 PlanDetail, §6.2); ``GET /plans/{id}`` agrees."""
    plans = api.get(f"/builds/{build_id}/plans")["plans"]
    assert len(plans) == 1, plans
    p = plans[0]
    assert is_uuid(p["id"]) and p["build_id"] == str(build_id), p
    assert p["generation"] == 1, p
    assert p["is_active"] is True, p
    assert p["settings_hash"] == EMPTY_SETTINGS_HASH, p
    ts(p["activated_at"], "plan activated_at")
    ts(p["sealed_at"], "plan sealed_at")
    assert p.get("superseded_at") is None, p
    assert p["member_count"] == members, p
    assert p["root_count"] == len(roots), p
    assert p["excluded_count"] == 0, p
    dep = p["deployment"]
    assert dep["id"] == p["deployment_id"], p
    assert (dep["kind"], dep["code_id"], dep["app_name"]) == ("local", CODE_ID, "local"), dep
    single = api.get(f"/plans/{p['id']}")
    for key in ("id", "build_id", "deployment_id", "settings_hash", "generation",
                "member_count", "root_count", "member_counts", "is_active", "sealed_at"):
        assert single[key] == p[key], (key, single, p)
    root_rows = api.get(f"/plans/{p['id']}/roots")
    assert root_rows["plan_id"] == p["id"] and root_rows["build_id"] == str(build_id), root_rows
    assert root_rows["deployment_id"] == p["deployment_id"], root_rows
    assert sorted(r["task_id"] for r in root_rows["roots"]) == sorted(ids(roots)), root_rows
    by_id = {str(r.id): r for r in roots}
    for r in root_rows["roots"]:
        task = by_id[r["task_id"]]
        assert r["instance_hash"] == str(task.instance_hash), r
        assert r["body"] == task.instance_body(), r
        assert r["is_root"] is True, r
    return p


def check_frontier(api: Api, build_id, plan: dict, build_status: str, complete: bool) -> dict:
    """``GET /builds/{id}/frontier`` of a build with nothing left to do (§4, §6.4)."""
    f = api.get(f"/builds/{build_id}/frontier")
    assert f["build_id"] == str(build_id), f
    assert f["plan_id"] == plan["id"], f
    assert f["deployment_id"] == plan["deployment_id"], f
    assert f["settings_hash"] == EMPTY_SETTINGS_HASH, f
    assert f["sealed"] is True, f
    assert f["plan_complete"] is complete, f
    assert f["build_status"] == build_status, f
    if complete:
        assert (f["runnable"], f["running"], f["discovery_jobs"]) == ([], [], []), f
    assert f["running"] == [], f
    return f


def check_task(api: Api, task, status: str, plan: dict | None = None) -> dict:
    """``GET /tasks/{id}`` (§4 TaskInfo): identity as registered, global status, and
    the instance under the plan's scope."""
    import sdk_tasks as st

    row = api.get(f"/tasks/{task.id}")
    assert row["task_id"] == str(task.id), row
    assert row["task_namespace"] == st.NAMESPACE, row
    assert row["task_name"] == type(task).__name__, row
    assert row["version"] == task.version, row
    assert row["output_uri"] == task.target().uri, row
    assert row["status"] == status, row
    ts(row["status_at"], "task status_at")
    if status == "completed":
        ts(row["completed_at"], "task completed_at")
        assert row.get("error_message") is None, row
    if status != "running":
        # claim holder fields only while RUNNING (§4 TaskInfo)
        assert row.get("claim_build_id") is None and row.get("claim_plan_id") is None, row
    insts = row["instances"]
    assert insts, row
    if plan is not None:
        mine = [i for i in insts if i["deployment_id"] == plan["deployment_id"]
                and i["settings_hash"] == plan["settings_hash"]]
        assert len(mine) == 1, insts
        inst = mine[0]
        assert inst["instance_hash"] == str(task.instance_hash), inst
        assert inst["body"] == task.instance_body(), inst
        assert is_uuid(inst["id"]), inst
        ts(inst["created_at"], "instance created_at")
    return row


def task_executions(api: Api, task) -> list[dict]:
    """``GET /tasks/{id}/executions`` across builds, newest first (§5.5)."""
    rows = api.get(f"/tasks/{task.id}/executions", include_ended=True, limit=500)["executions"]
    starts = [ts(e["started_at"]) for e in rows]
    assert starts == sorted(starts, reverse=True), f"task executions are not newest first: {rows}"
    for e in rows:
        assert e["task_id"] == str(task.id), e
    return rows
