"""The OpenAPI document against the OpenAPI 3.1 meta-schema, and real answers of a
running server against the schemas the document gives for them.

Usage: check.py URL API_KEY. Exits non-zero on the first mismatch, naming it.
"""
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import jsonschema
from openapi_spec_validator import validate

URL, KEY = sys.argv[1], sys.argv[2]
CHECKED = []


def call(method, path, body=None, key=KEY):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


doc = json.loads(call("GET", "/openapi.json", key=None)[1])
validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
print(f"openapi: valid OpenAPI {doc['openapi']}, {len(doc['paths'])} paths")


def response_schema(template, method, status):
    op = doc["paths"][template][method.lower()]
    resp = op["responses"].get(str(status))
    assert resp is not None, f"{method} {template}: status {status} not documented"
    return resp["content"]["application/json"]["schema"]


def check(method, template, status, path=None, body=None, key=KEY):
    got, raw = call(method, path or template, body, key)
    assert got == status, f"{method} {path or template}: {got} (want {status}): {raw[:300]!r}"
    schema = response_schema(template, method, status)
    # $refs point into the document's components: validate with them at the root.
    root = dict(schema, components=doc["components"])
    value = json.loads(raw)
    try:
        jsonschema.Draft202012Validator(root).validate(value)
    except jsonschema.ValidationError as e:
        sys.exit(f"{method} {template} {status}: answer does not match its schema: {e.message}"
                 f" at {list(e.absolute_path)}\n{json.dumps(value)[:500]}")
    CHECKED.append(f"{method} {template} {status}")
    return value


def now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# --- service and v1 ---------------------------------------------------------------
check("GET", "/api/v1/version", 200, key=None)
build = check("POST", "/api/v1/builds", 201, body={"root_task_ids": ["t-root"]})
b = f"/api/v1/builds/{build['id']}"
check("GET", "/api/v1/builds/{build_id}", 200, path=b)
check("GET", "/api/v1/builds", 200)
task = {"task_id": "t-root", "task_name": "Root", "task_namespace": "tests",
        "task_data": {"x": 1}, "dependency_task_ids": []}
check("POST", "/api/v1/builds/{build_id}/tasks", 201, path=f"{b}/tasks", body=task)
check("GET", "/api/v1/tasks/{task_id}", 200, path="/api/v1/tasks/t-root")
check("POST", "/api/v1/builds/{build_id}/tasks/{task_id}/assets", 201,
      path=f"{b}/tasks/t-root/assets", body=[{"type": "json", "name": "m", "body": {"a": 1}}])
check("GET", "/api/v1/builds/{build_id}/tasks", 200, path=f"{b}/tasks")
check("GET", "/api/v1/builds/{build_id}/events", 200, path=f"{b}/events")
check("GET", "/api/v1/builds/{build_id}/graph", 200, path=f"{b}/graph")
check("GET", "/api/v1/tasks", 200)
check("GET", "/api/v1/tasks/{task_id}/assets", 200, path="/api/v1/tasks/t-root/assets")
check("GET", "/api/v1/tasks/{task_id}/metadata", 200, path="/api/v1/tasks/t-root/metadata")
check("GET", "/api/v1/tasks/search", 200)
check("GET", "/api/v1/builds/{build_id}", 404, path=f"/api/v1/builds/{uuid.uuid4()}")
check("GET", "/api/v1/builds/{build_id}", 422, path="/api/v1/builds/not-a-uuid")
check("POST", "/api/v1/builds", 401, body={}, key="sk_000000_" + "A" * 32)

# --- v2 -----------------------------------------------------------------------------
dep = check("POST", "/api/v2/deployments", 200,
            body={"id": str(uuid.uuid4()), "kind": "local", "code_id": "openapi-check"})
bid = str(uuid.uuid4())
check("POST", "/api/v2/builds", 200, body={"id": bid, "root_task_ids": ["v2-root"]})
check("GET", "/api/v2/builds/{build_id}", 200, path=f"/api/v2/builds/{bid}")
check("GET", "/api/v2/builds", 200)
item = {"task_id": "v2-root", "task_namespace": "tests", "task_name": "Root", "version": None,
        "output_uri": None, "instance_hash": "ih-root", "body": {"n": 1},
        "declared_upstreams": None, "observed_complete": False, "observed_at": now()}
pid = str(uuid.uuid4())
check("POST", "/api/v2/builds/{build_id}/plans", 200, path=f"/api/v2/builds/{bid}/plans",
      body={"plan_id": pid, "deployment_id": dep["id"], "settings": {}, "roots": [item]})
# The root expanded: registered again as a member with its (empty) upstreams.
check("POST", "/api/v2/plans/{plan_id}/members", 200, path=f"/api/v2/plans/{pid}/members",
      body={"items": [dict(item, declared_upstreams=[])]})
check("GET", "/api/v2/plans/{plan_id}", 200, path=f"/api/v2/plans/{pid}")
check("GET", "/api/v2/builds/{build_id}/frontier", 200, path=f"/api/v2/builds/{bid}/frontier")
ex = str(uuid.uuid4())
member = f"/api/v2/plans/{pid}/members/v2-root"
check("POST", "/api/v2/plans/{plan_id}/members/{task_id}/start", 200, path=f"{member}/start",
      body={"execution_id": ex, "claim": True, "executor": "local", "executor_ref": "pid-1"})
check("POST", "/api/v2/plans/{plan_id}/members/{task_id}/complete", 200,
      path=f"{member}/complete", body={"execution_id": ex})
check("GET", "/api/v2/tasks/{task_id}", 200, path="/api/v2/tasks/v2-root")
check("GET", "/api/v2/tasks", 200)
check("GET", "/api/v2/builds/{build_id}/executions", 200, path=f"/api/v2/builds/{bid}/executions")
check("POST", "/api/v2/plans/{plan_id}/seal", 200, path=f"/api/v2/plans/{pid}/seal")
check("GET", "/api/v2/builds/{build_id}", 404, path=f"/api/v2/builds/{uuid.uuid4()}")
check("POST", "/api/v2/builds", 422, body={"id": bid, "bogus": 1})

print(f"openapi: {len(CHECKED)} answers match their documented schemas")
