"""Real-browser checks of the builds list filter (P4), the task page's dependencies
(P6), the explorer's combobox, click-to-filter and "show in graph" (P7), and the locks
countdown (P8). Screenshots of each page, wide and narrow, go to
target/ui-artifacts/pages/."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from conftest import BASE, _context, api, home_env, shot, sign_in


@pytest.fixture(scope="module")
def session_state(browser):
    """One sign-in for this file (the server throttles login attempts per client)."""
    context = browser.new_context()
    p = context.new_page()
    sign_in(p)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser, request, session_state):
    """A fresh, guarded context that carries the session cookie."""
    yield from _context(browser, request, storage_state=session_state)


def open_home(page):
    page.goto(f"{BASE}/")
    page.wait_for_url(re.compile(r".*/ws/.*"))


def both_widths(page, name):
    shot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, name + "-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})


def new_build(description):
    status, b = api("POST", "/api/v1/builds",
                    {"commit_hash": "feed123", "root_task_ids": [], "description": description})
    assert status == 201
    return b["id"]


def register(build, task_id, name, data, deps=()):
    status, _ = api("POST", f"/api/v1/builds/{build}/tasks", {
        "task_id": task_id, "task_name": name, "task_namespace": "ui.pages",
        "task_data": data, "dependency_task_ids": list(deps)})
    assert status == 201


def choose_column(page, column, task_id, value):
    """Adds `column` to the explorer through the chooser; the task's cell, showing `value`."""
    page.locator("details.columns summary").click()
    page.get_by_role("checkbox", name=column).check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*cols=" + re.escape(column) + ".*"))
    cell = page.locator(f'tr[data-task="{task_id}"] td.param-col a.cell-filter')
    expect(cell).to_have_text(value)
    return cell


def test_builds_list_status_counter_filters_the_list(page):
    failed = new_build("will fail")
    assert api("POST", f"/api/v1/builds/{failed}/fail")[0] == 200
    new_build("keeps running")
    open_home(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/builds")
    both_widths(page, "builds-filters")
    page.locator('a[data-status-filter="failed"]').click()
    page.wait_for_url(re.compile(r".*/builds\?status=failed$"))
    rows = page.locator("table.builds tbody tr")
    expect(rows.first).to_be_visible()
    for badge in rows.locator("td:first-child .badge").all():
        expect(badge).to_have_attribute("data-status", "failed")
    expect(page.locator(f'tr[data-build="{failed}"]')).to_be_visible()
    expect(page.locator('a[data-status-filter="failed"]')).to_have_attribute("aria-current", "page")
    # The text filter keeps the status.
    page.get_by_label("Name, commit or id contains").fill(failed[:13])
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    assert "status=failed" in page.url and "q=" in page.url


def test_task_page_shows_both_dependency_directions(page):
    build = new_build("deps")
    salt = uuid.uuid4().hex[:24]
    ids = {n: f"{salt}{i:08x}" for i, n in enumerate("ABC")}
    register(build, ids["A"], "A", {"x": 1})
    register(build, ids["B"], "B", {"x": 2}, [ids["A"]])
    register(build, ids["C"], "C", {"x": 3}, [ids["B"]])
    open_home(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/tasks/{ids['B']}")
    depends = page.get_by_role("list", name="Depends on")
    used = page.get_by_role("list", name="Used by")
    expect(depends.get_by_role("link", name="A", exact=True)).to_be_visible()
    expect(used.get_by_role("link", name="C", exact=True)).to_be_visible()
    expect(page.locator('[data-count-of="used-by"]')).to_have_text("(1)")
    both_widths(page, "task-dependencies")
    # "Show in build graph" opens the graph with this task's node marked.
    page.get_by_role("link", name="Show in build graph").click()
    page.wait_for_url(re.compile(rf".*/builds/{build}\?tab=graph&highlight={ids['B']}$"))
    expect(page.locator(f'svg.dag a.hl g.node[data-task="{ids["B"]}"]')).to_be_visible()
    expect(page.locator("svg.dag a.hl")).to_have_count(1)
    shot(page, "build-highlight")
    page.go_back()
    used.get_by_role("link", name="C", exact=True).click()
    page.wait_for_url(re.compile(rf".*/tasks/{ids['C']}$"))
    expect(page.get_by_role("list", name="Depends on").get_by_role("link", name="B", exact=True)).to_be_visible()


def test_explorer_combobox_by_keyboard_then_click_to_filter(page):
    build = new_build("explorer")
    run = uuid.uuid4().hex[:12]
    ids = {}
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        ids[lr] = uuid.uuid4().hex
        register(build, ids[lr], f"Fit{i}", {"run": run, "lr": lr})
    open_home(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/tasks?filter=param.run%3A%3D%3A{run}")
    rows = page.locator("table.explorer tbody tr")
    expect(rows).to_have_count(3)
    box = page.get_by_role("combobox", name="Add a condition")
    box.click()
    page.keyboard.type("param.l")
    listbox = page.get_by_role("listbox", name="Suggestions")
    # The list for "param.l" (not the one the empty field asked for on focus).
    expect(listbox.get_by_role("option").first).to_contain_text("param.l")
    expect(listbox.get_by_role("option", name=re.compile(r"^param\.lr"))).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    # ↓ until param.lr is the active option (aria-activedescendant), then Enter.
    selected = listbox.locator('[role=option][aria-selected="true"]')
    for _ in range(12):
        page.keyboard.press("ArrowDown")
        expect(selected).to_have_count(1)
        assert box.get_attribute("aria-activedescendant") == selected.get_attribute("id")
        if selected.inner_text().startswith("param.lr"):
            break
    page.keyboard.press("Enter")
    expect(box).to_have_value("param.lr:")
    # The operators: ↓ ↓ ↓ is ">" (after "=" and "!=").
    expect(listbox.get_by_role("option", name=re.compile("greater than"))).to_be_visible()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(box).to_have_value("param.lr:>:")
    page.keyboard.type("0.005")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*param\.lr%3A%3E%3A0\.005.*"))
    expect(rows).to_have_count(2)
    expect(page.locator(".chip").filter(has_text="param.lr:>:0.005")).to_be_visible()
    both_widths(page, "explorer-combobox")
    # Columns: add param.lr through the chooser, then click a cell to filter by it.
    cell = choose_column(page, "param.lr", ids[0.01], "0.01")
    cell.click()
    page.wait_for_url(re.compile(r".*param\.lr%3A%3D%3A0\.01.*"))
    expect(rows).to_have_count(1)
    expect(page.locator(f'tr[data-task="{ids[0.01]}"]')).to_be_visible()
    # Shift-click excludes the value instead.
    page.go_back()
    expect(rows).to_have_count(2)
    page.locator(f'tr[data-task="{ids[0.01]}"] td.param-col a.cell-filter').click(modifiers=["Shift"])
    page.wait_for_url(re.compile(r".*param\.lr%3A%21%3D%3A0\.01.*"))
    expect(rows).to_have_count(1)
    expect(page.locator(f'tr[data-task="{ids[0.1]}"]')).to_be_visible()
    # "show in graph" opens the build graph with the node marked.
    page.locator(f'tr[data-task="{ids[0.1]}"] a.show-in-graph').click()
    expect(page.locator(f'svg.dag a.hl g.node[data-task="{ids[0.1]}"]')).to_be_visible()


def test_explorer_asset_column_shows_values_and_filters(page):
    build = new_build("asset columns")
    run = uuid.uuid4().hex[:12]
    ids = {}
    for i, acc in enumerate([0.93, 0.5]):
        ids[acc] = uuid.uuid4().hex
        register(build, ids[acc], f"Eval{i}", {"run": run})
        status, _ = api("POST", f"/api/v1/builds/{build}/tasks/{ids[acc]}/assets",
                        [{"type": "json", "name": "metrics", "body": {"acc": acc}}])
        assert status == 201
    open_home(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/tasks?filter=param.run%3A%3D%3A{run}")
    rows = page.locator("table.explorer tbody tr")
    expect(rows).to_have_count(2)
    # The chooser offers the asset's keys; the column shows each task's value.
    cell = choose_column(page, "asset.metrics.acc", ids[0.93], "0.93")
    both_widths(page, "explorer-asset-column")
    cell.click()
    page.wait_for_url(re.compile(r".*asset\.metrics\.acc%3A%3D%3A0\.93.*"))
    expect(rows).to_have_count(1)


def test_locks_countdown_decreases_and_released_locks_go(page):
    name = f"countdown-{uuid.uuid4().hex[:8]}"
    owner = str(uuid.uuid4())
    status, _ = api("POST", f"/api/v1/locks/{name}/acquire",
                    {"owner_id": owner, "ttl_seconds": 90, "check_task_completion": False})
    assert status == 200
    open_home(page)
    env = home_env(page)
    page.goto(f"{BASE}{env}/locks")
    ttl = page.locator(f'tr[data-lock="{name}"] .ttl')
    first = ttl.inner_text()
    assert re.match(r"in \d+ min \d+ s|in \d+ s", first), first
    expect(ttl).not_to_have_text(first, timeout=4000)

    def seconds(text):
        m = re.match(r"in (?:(\d+) min )?(\d+) s", text)
        return int(m.group(1) or 0) * 60 + int(m.group(2))

    assert seconds(ttl.inner_text()) < seconds(first)
    both_widths(page, "locks-countdown")
    status, _ = api("POST", f"/api/v1/locks/{name}/release", {"owner_id": owner})
    assert status == 200
    expect(page.locator(f'tr[data-lock="{name}"]')).to_have_count(0, timeout=6000)
