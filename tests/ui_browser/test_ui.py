"""Real-browser flows of the web UI (ui.md §8.4), as far as the UI is built."""

import os
import re
import time
import uuid

from playwright.sync_api import expect

from conftest import BASE, api, home_env, shot, sign_in, start_sdk

SDK_V1 = os.environ.get("UI_TEST_SDK_V1_PYTHON")
SDK_V2 = os.environ.get("UI_TEST_SDK_V2_PYTHON")


def test_browser_drives_debian_chromium(browser, page):
    print("chromium", browser.version)
    page.goto(BASE + "/login")
    expect(page.get_by_label("Password")).to_be_visible()
    shot(page, "login")


def test_sign_in_errors_cookie_flags_and_next(page):
    page.goto(BASE + "/ws/nope/env/x/builds")
    assert "/login?next=" in page.url
    page.get_by_label("Email").fill(os.environ["UI_TEST_ADMIN_EMAIL"])
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Invalid email or password")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(os.environ["UI_TEST_ADMIN_EMAIL"])
    expect(page.get_by_label("Password")).to_be_focused()
    # Keyboard only: type the password and press Enter.
    page.keyboard.type(os.environ["UI_TEST_ADMIN_PASSWORD"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ws/nope/env/x/builds$"))
    # Back where we were going: a workspace we are not in is a 404 page.
    assert "/ws/nope/env/x/builds" in page.url
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "sd_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert "sd_session" not in page.evaluate("document.cookie")
    # Sign out, then the back button shows no cached page.
    page.goto(BASE + "/account")
    page.get_by_text(os.environ["UI_TEST_ADMIN_EMAIL"]).first.click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    page.go_back()
    page.wait_for_load_state()
    assert "/login" in page.url


def test_connect_key_then_real_sdk_v1_build_turns_green_live(page):
    sign_in(page)
    env = home_env(page)
    page.goto(BASE + env + "/connect")
    page.get_by_role("button", name="Create a key for this environment").click()
    key = page.get_by_label("API key").input_value()
    assert re.fullmatch(r"sk_[0-9a-f]{6}_[A-Za-z0-9_-]{32}", key), key
    expect(page.locator("pre.snippet").first).to_contain_text(f"export STARDAG_API_KEY={key}")
    shot(page, "connect")
    # The key is not in the URL; a fresh visit never shows it again.
    assert key not in page.url
    page.goto(BASE + env + "/connect")
    assert key not in page.content()
    if not SDK_V1:
        return
    status, body = api("GET", "/api/v1/builds", key=key)
    assert status == 200
    before = body["total"]
    expect(page.locator(".live-first-build")).to_be_visible()
    proc = start_sdk(SDK_V1, "sdk_dag_v1.py", {
        "STARDAG_REGISTRY_URL": BASE, "STARDAG_API_KEY": key, "COMMIT_HASH": "ui-test",
        "STARDAG_TARGET_ROOTS": '{"default": "%s"}' % os.path.join(os.environ["UI_TEST_TMP"], "targets"),
        "UI_RUN_ID": uuid.uuid4().hex, "UI_SLEEP": "1.5",
    })
    try:
        if before == 0:
            # Without a reload, the page announces the build and links to it.
            link = page.locator(".arrived a")
            expect(link).to_be_visible(timeout=20000)
            link.click()
        else:
            # Other tests' builds may be newer: wait for this SDK run's (commit ui-test).
            page.goto(BASE + env + "/builds?q=ui-test")
            page.locator(".new-builds a").click(timeout=20000)
            page.locator("table.builds a.strong").first.click()
        page.wait_for_url(re.compile(r".*/builds/[0-9a-f-]{36}$"))
        expect(page.locator("svg.dag g.node")).to_have_count(3, timeout=20000)
        # Live: the badge turns green with no navigation.
        url = page.url
        expect(page.locator("[data-build-status] .badge")).to_have_text(re.compile("completed"), timeout=30000)
        expect(page.locator("svg.dag g.node.st-completed")).to_have_count(3)
        expect(page.locator("svg.dag g.node tspan.word", has_text="running")).to_have_count(0)
        # The tasks tab counts the tasks that registered after the page was drawn.
        expect(page.locator("[data-task-total]")).to_have_text("3")
        # And the build's completion time appears without a reload.
        expect(page.locator("[data-completed-at] time")).to_have_count(1)
        assert page.url == url
        shot(page, "build-graph")
        assert proc.wait(timeout=60) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    page.locator("svg.dag a").first.click()
    page.wait_for_url(re.compile(r".*/tasks/.+"))
    expect(page.get_by_role("heading", level=2, name="Parameters")).to_be_visible()
    shot(page, "task")


def test_real_sdk_v2_build_shows_plans_and_executions(page):
    if not SDK_V2:
        return
    proc = start_sdk(SDK_V2, "sdk_dag_v2.py", {
        "STARDAG_API_URL": BASE, "STARDAG_API_KEY": os.environ["UI_TEST_API_KEY"],
        "STARDAG_CODE_ID": "ui-browser-test",
        "STARDAG_TARGET_ROOTS": '{"default": "%s"}' % os.path.join(os.environ["UI_TEST_TMP"], "targets-v2"),
        "UI_RUN_ID": uuid.uuid4().hex,
    })
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    sign_in(page)
    env = home_env(page)
    page.goto(BASE + env + "/builds")
    row = page.locator("table.builds tbody tr", has=page.locator("span.tag", has_text="v2")).first
    expect(row).to_be_visible()
    shot(page, "builds")
    row.locator("a.strong").click()
    expect(page.locator("[data-build-status] .badge")).to_have_text(re.compile("completed"), timeout=20000)
    expect(page.locator("svg.dag g.node")).to_have_count(3)
    page.get_by_role("link", name="Plans").click()
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Executions").click()
    expect(page.locator("table.list tbody tr")).to_have_count(3)
    shot(page, "build-v2-executions")
    # The root's task page: its dependencies come from the plans that hold it.
    page.go_back()
    page.go_back()
    page.locator("svg.dag a", has_text="Total").first.click()
    page.wait_for_url(re.compile(r".*/tasks/.+"))
    depends = page.get_by_role("list", name="Depends on")
    expect(depends.get_by_role("link", name="Source", exact=True)).to_have_count(2)
    expect(page.locator('[data-count-of="depends-on"]')).to_have_text("(2)")
    expect(page.locator('[data-count-of="used-by"]')).to_have_text("(0)")
    shot(page, "task-v2")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "task-v2-narrow")
    # And a source's: used by the root.
    depends.get_by_role("link", name="Source", exact=True).first.click()
    used = page.get_by_role("list", name="Used by")
    expect(used.get_by_role("link", name="Total", exact=True)).to_be_visible()


def seed_dag():
    """A → B → C, D → C through the v1 API; (build id, {name: task id})."""
    status, b = api("POST", "/api/v1/builds", {"commit_hash": "abc1234", "root_task_ids": [], "description": "seeded"})
    assert status == 201
    build = b["id"]
    salt = uuid.uuid4().hex
    ids = {n: f"{salt[:24]}{i:08x}" for i, n in enumerate("ABCD")}
    deps = {"A": [], "B": ["A"], "D": [], "C": ["B", "D"]}
    for name in "ABDC":
        status, _ = api("POST", f"/api/v1/builds/{build}/tasks", {
            "task_id": ids[name], "task_name": name, "task_namespace": "ui",
            "task_data": {"name": name, "lr": 0.01, "model": {"layers": [{"size": 8}]}},
            "dependency_task_ids": [ids[d] for d in deps[name]],
        })
        assert status == 201
    return build, ids


def test_build_page_graph_and_live_updates(page):
    build, ids = seed_dag()
    sign_in(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds/{build}")
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(4)
    expect(page.locator("svg.dag path.edge")).to_have_count(3)
    # Every edge points forward (left to right).
    for path in page.locator("svg.dag path.edge").all():
        d = path.get_attribute("d")
        xs = [float(x) for x in re.findall(r"(-?\d+\.\d+),", d)]
        assert xs[-1] > xs[0], d
    b_node = page.locator(f'svg.dag g.node[data-task="{ids["B"]}"]')
    expect(b_node).to_have_class("node st-pending")
    api("POST", f"/api/v1/builds/{build}/tasks/{ids['B']}/start")
    expect(b_node).to_have_class("node st-running", timeout=5000)
    expect(page.locator('[data-count="running"]')).to_have_text("1")
    api("POST", f"/api/v1/builds/{build}/tasks/{ids['B']}/complete")
    expect(b_node).to_have_class("node st-completed", timeout=5000)
    # The node's status line follows too, not only its colour.
    expect(b_node.locator("tspan.word")).to_have_text("completed")
    # A new task appears in the graph without a reload.
    status, _ = api("POST", f"/api/v1/builds/{build}/tasks", {
        "task_id": ids["A"][:24] + "ffffffff", "task_name": "E", "task_namespace": "ui",
        "task_data": {}, "dependency_task_ids": [ids["C"]],
    })
    assert status == 201
    expect(nodes).to_have_count(5, timeout=5000)
    expect(page.locator(".live-text")).to_contain_text("Updated")
    # Top-to-bottom layout, then a node opens its task page.
    page.get_by_role("link", name="Top ↓ bottom").click()
    expect(page.locator("svg.dag")).to_have_attribute("data-dir", "tb")
    page.locator(f'svg.dag g.node[data-task="{ids["C"]}"]').click()
    page.wait_for_url(re.compile(rf".*/tasks/{ids['C']}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("C")


def test_override_as_admin(page):
    build, _ = seed_dag()
    sign_in(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds/{build}")
    page.get_by_text("Override status…").click()
    page.get_by_label("Mark as").select_option("failed")
    page.get_by_role("button", name="Record status").click()
    expect(page.locator("[data-build-status] .badge")).to_have_text(re.compile("failed"))
    expect(page.get_by_text(f"Status set by {os.environ['UI_TEST_ADMIN_EMAIL']}")).to_be_visible()


def test_api_key_create_and_revoke(page):
    sign_in(page)
    env = home_env(page)
    ws = env.split("/")[2]
    page.goto(f"{BASE}/ws/{ws}/settings/api-keys")
    page.get_by_label("Name").fill("browser-test")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("API key").input_value()
    assert api("GET", "/api/v1/builds", key=key)[0] == 200
    shot(page, "api-keys")
    page.goto(f"{BASE}/ws/{ws}/settings/api-keys")
    assert key not in page.content()
    row = page.locator("tr", has=page.get_by_text("browser-test")).first
    row.get_by_role("button", name="Revoke").click()
    # Our own <dialog>, never window.confirm.
    page.locator("dialog.confirm").get_by_role("button", name="Revoke").click()
    # The list after a revoke includes revoked keys, so the row says what happened.
    expect(page.get_by_text("Key revoked.")).to_be_visible()
    revoked = page.locator('tr[data-state="revoked"]', has=page.get_by_text("browser-test"))
    expect(revoked).to_have_count(1)
    expect(revoked).to_contain_text("revoked")
    expect(revoked.get_by_role("button", name="Revoke")).to_have_count(0)
    assert api("GET", "/api/v1/builds", key=key)[0] == 401
    # By default revoked keys are hidden; the toggle (a plain link) brings them back.
    page.get_by_role("link", name="Hide revoked keys").click()
    page.wait_for_url(re.compile(r".*/settings/api-keys$"))
    expect(page.locator("tr", has=page.get_by_text("browser-test"))).to_have_count(0)
    page.get_by_role("link", name="Show revoked keys").click()
    page.wait_for_url(re.compile(r".*/settings/api-keys\?include_revoked=true$"))
    expect(revoked).to_have_count(1)
    shot(page, "api-keys-revoked")


def test_hostile_names_render_inert(page):
    status, b = api("POST", "/api/v1/builds", {"root_task_ids": []})
    build = b["id"]
    tid = uuid.uuid4().hex
    api("POST", f"/api/v1/builds/{build}/tasks", {
        "task_id": tid, "task_name": "<img src=x onerror=alert(1)>", "task_namespace": "",
        "task_data": {"x": "<script>alert(2)</script>"}, "dependency_task_ids": []})
    api("POST", f"/api/v1/builds/{build}/tasks/{tid}/assets", [
        {"type": "markdown", "name": "report", "body": {"content": "<script>alert(3)</script>\n\n[x](javascript:alert(4))\n\n| a | b |\n|---|---|\n| 1 | 2 |"}}])
    sign_in(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds/{build}")
    page.goto(f"{BASE}{env}/tasks/{tid}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator(".markdown table")).to_be_visible()
    page.get_by_role("link", name="x", exact=True).click()
    # The guards fail the test on any dialog.


def test_pages_work_without_javascript(nojs_page):
    page = nojs_page
    build, ids = seed_dag()
    sign_in(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds/{build}")
    expect(page.locator("svg.dag g.node")).to_have_count(4)
    page.locator(f'svg.dag g.node[data-task="{ids["A"]}"]').click()
    page.wait_for_url(re.compile(rf".*/tasks/{ids['A']}$"))
    page.goto(f"{BASE}{env}/builds/{build}?tab=tasks")
    expect(page.locator("table.tasks tbody tr")).to_have_count(4)
    # The switcher is a <details>: it opens without JS.
    page.locator("details.switcher summary").click()
    expect(page.locator("a.menu-env").first).to_be_visible()
    # The explorer's form submits without JS, and a chip's × is a plain link.
    page.goto(f"{BASE}{env}/tasks")
    page.get_by_label("Filter", exact=True).fill(f"task_id:=:{ids['B']},param.lr:=:0.01")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.explorer tbody tr")).to_have_count(1)
    page.get_by_role("link", name=f"Remove task_id:=:{ids['B']}").click()
    expect(page.locator("ul.chips .chip")).to_have_count(1)


def test_explorer_searches_by_parameter_and_locks_are_listed(page):
    status, b = api("POST", "/api/v1/builds", {"commit_hash": "abc1234", "root_task_ids": [], "description": "explorer"})
    assert status == 201
    run = uuid.uuid4().hex[:12]
    ids = {}
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        ids[lr] = uuid.uuid4().hex
        status, _ = api("POST", f"/api/v1/builds/{b['id']}/tasks", {
            "task_id": ids[lr], "task_name": f"Train{i}", "task_namespace": "ui.explorer",
            "task_data": {"run": run, "lr": lr}, "dependency_task_ids": []})
        assert status == 201
    status, _ = api("POST", f"/api/v1/locks/explorer-{run}/acquire",
                    {"owner_id": str(uuid.uuid4()), "ttl_seconds": 60, "check_task_completion": False})
    assert status == 200
    sign_in(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds")
    page.get_by_role("link", name="Explorer").click()
    page.wait_for_url(re.compile(r".*/tasks$"))
    page.get_by_label("Filter", exact=True).fill(f"param.run:=:{run},param.lr:>:0.005")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.explorer tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-task="{ids[0.1]}"]')).to_be_visible()
    expect(page.locator(f'tr[data-task="{ids[0.001]}"]')).to_have_count(0)
    assert "filter=param.run%3A%3D%3A" in page.url and "param.lr%3A%3E%3A0.005" in page.url
    expect(page.locator(".result-count")).to_contain_text("1–2 of 2 tasks")
    shot(page, "explorer")
    # Reload keeps the state; × on a chip drops that condition only.
    page.reload()
    expect(rows).to_have_count(2)
    page.get_by_role("link", name="Remove param.lr:>:0.005").click()
    expect(rows).to_have_count(3)
    # A refused condition is explained next to the form; the page stays usable.
    page.get_by_label("Add a condition").fill("param.lr:>:high")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".filter-error")).to_contain_text("'high' is not a number")
    expect(page.locator(".chip.bad")).to_contain_text("param.lr:>:high")
    shot(page, "explorer-error")
    page.get_by_role("link", name="Remove param.lr:>:high").click()
    expect(rows).to_have_count(3)
    # A row opens the task page.
    page.get_by_role("link", name="Train1", exact=True).click()
    page.wait_for_url(re.compile(rf".*/tasks/{ids[0.01]}$"))
    page.get_by_role("link", name="Locks").click()
    expect(page.locator(f'tr[data-lock="explorer-{run}"]')).to_be_visible()
    shot(page, "locks")
