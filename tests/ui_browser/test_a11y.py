"""Accessibility of every page kind the suite visits, checked in the DOM through
playwright (no external library: nothing may be fetched, and axe-core is not among the
pinned wheels). The rules are structural ones a page either meets or not:

- ``<html lang>`` is set; exactly one ``<h1>`` and one ``<main>``;
- every input, select and textarea (but hidden inputs) has a label: ``label[for]`` with
  text, a ``<label>`` around it, ``aria-label`` or ``aria-labelledby``;
- every ``<img>`` has ``alt`` (or ``role`` + ``aria-label``) or ``aria-hidden``; every
  ``<svg>`` has ``role`` + an accessible name, or ``aria-hidden``; nothing focusable sits
  inside a ``role="img"`` (its children are hidden from assistive technology);
- every link and button has an accessible name (text, ``aria-label``,
  ``aria-labelledby``, ``title``, or an image's ``alt``);
- ids are unique, and every ``aria-labelledby``/``label[for]``/``aria-controls`` names
  an existing id;
- every ``<nav>`` landmark is labelled.

Pages are checked after the script ran (the explorer's combobox, for one, adds ARIA of
its own), signed in as the admin and as a second user with a pending invite (header
badge and the after-sign-in notice), plus the login and 404 pages.
"""

import re
import uuid

from playwright.sync_api import expect

from conftest import BASE, Guards, api, home_env, register_user, sign_in

CHECK = r"""
() => {
  const problems = [];
  const say = (rule, el) => {
    const html = el.outerHTML.replace(/\s+/g, " ");
    problems.push(rule + ": " + (html.length > 160 ? html.slice(0, 160) + "…" : html));
  };
  const text = (el) => (el.textContent || "").replace(/\s+/g, " ").trim();
  const byIds = (list) => list.split(/\s+/).filter(Boolean).map((id) => document.getElementById(id));
  const labelledBy = (el) => {
    const ids = el.getAttribute("aria-labelledby");
    if (!ids) return "";
    return byIds(ids).filter(Boolean).map(text).join(" ").trim();
  };
  const ariaName = (el) => (el.getAttribute("aria-label") || "").trim() || labelledBy(el);

  if (!(document.documentElement.getAttribute("lang") || "").trim()) say("html without lang", document.documentElement);
  const h1 = document.querySelectorAll("h1");
  if (h1.length !== 1) problems.push("expected one h1, found " + h1.length);
  const main = document.querySelectorAll("main, [role=main]");
  if (main.length !== 1) problems.push("expected one main, found " + main.length);

  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const forLabels = el.id ? Array.from(document.querySelectorAll("label[for]"))
      .filter((l) => l.getAttribute("for") === el.id && text(l)) : [];
    const wrapping = el.closest("label");
    if (!forLabels.length && !(wrapping && text(wrapping)) && !ariaName(el)) say("form field without a label", el);
  }

  for (const img of document.querySelectorAll("img")) {
    const hidden = img.getAttribute("aria-hidden") === "true";
    if (!hidden && !img.hasAttribute("alt") && !(img.getAttribute("role") && ariaName(img))) say("img without alt", img);
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.parentElement && svg.parentElement.closest("svg")) continue;
    const hidden = svg.getAttribute("aria-hidden") === "true";
    if (!hidden && !(svg.getAttribute("role") && ariaName(svg))) say("svg without role and name, or aria-hidden", svg);
  }
  for (const pic of document.querySelectorAll("[role=img]")) {
    const inner = pic.querySelector("a[href], button, input, select, textarea, [tabindex]");
    if (inner) say("focusable content inside role=img (hidden from assistive technology)", inner);
  }

  for (const el of document.querySelectorAll("a[href], button, [role=button], [role=link]")) {
    const imgAlt = Array.from(el.querySelectorAll("img[alt]")).map((i) => i.alt.trim()).join("");
    const svgTitle = el.namespaceURI === "http://www.w3.org/2000/svg"
      ? Array.from(el.querySelectorAll("title")).map(text).join("") : "";
    const name = ariaName(el) || text(el) || (el.getAttribute("title") || "").trim() || imgAlt || svgTitle;
    if (!name) say("link or button without an accessible name", el);
  }

  const seen = new Map();
  for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  for (const [id, n] of seen) if (n > 1) problems.push("duplicate id '" + id + "' (" + n + " times)");
  for (const el of document.querySelectorAll("[aria-labelledby], [aria-controls], [aria-describedby]")) {
    for (const attr of ["aria-labelledby", "aria-controls", "aria-describedby"]) {
      const ids = el.getAttribute(attr);
      if (ids && byIds(ids).some((x) => !x)) say(attr + " names a missing id", el);
    }
  }
  for (const l of document.querySelectorAll("label[for]")) {
    if (!document.getElementById(l.getAttribute("for"))) say("label for a missing id", l);
  }

  for (const nav of document.querySelectorAll("nav, [role=navigation]")) {
    if (!ariaName(nav)) say("nav landmark without a label", nav);
  }
  return problems;
}
"""


def check(page, name, found):
    page.wait_for_load_state("load")
    for p in page.evaluate(CHECK):
        found.append(f"{name} ({page.url.replace(BASE, '')}): {p}")


def seed():
    """A v1 build A → B with parameters, a markdown and a JSON asset on B, and a lock."""
    status, b = api("POST", "/api/v1/builds", {"root_task_ids": [], "description": "a11y"})
    assert status == 201
    a, t = uuid.uuid4().hex, uuid.uuid4().hex
    for tid, name, deps in [(a, "Prepare", []), (t, "Train", [a])]:
        status, _ = api("POST", f"/api/v1/builds/{b['id']}/tasks", {
            "task_id": tid, "task_name": name, "task_namespace": "a11y",
            "task_data": {"lr": 0.01, "model": {"layers": [{"size": 8}]}}, "dependency_task_ids": deps})
        assert status == 201
    status, _ = api("POST", f"/api/v1/builds/{b['id']}/tasks/{t}/assets", [
        {"type": "markdown", "name": "report", "body": {"content": "# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |"}},
        {"type": "json", "name": "metrics", "body": {"acc": 0.9}}])
    assert status == 201
    status, _ = api("POST", f"/api/v1/locks/a11y-{t[:8]}/acquire",
                    {"owner_id": str(uuid.uuid4()), "ttl_seconds": 60, "check_task_completion": False})
    assert status == 200
    return b["id"], t


def test_every_page_kind_meets_the_structural_rules(browser, page):
    found = []
    build, task = seed()
    tag = uuid.uuid4().hex[:6]
    slug = f"a11y-{tag}"
    bob, bob_pw = f"bob-a11y-{tag}@example.org", "bob a11y password"
    register_user(bob, bob_pw)

    # Signed out: the login form.
    page.goto(BASE + "/login")
    check(page, "login", found)

    sign_in(page)
    env = home_env(page)
    ws = env.split("/")[2]
    for name, path in [
        ("connect", f"{env}/connect"),
        ("builds", f"{env}/builds"),
        ("build graph", f"{env}/builds/{build}"),
        ("build tasks", f"{env}/builds/{build}?tab=tasks"),
        ("build events", f"{env}/builds/{build}?tab=events"),
        ("task", f"{env}/tasks/{task}"),
        ("explorer", f"{env}/tasks"),
        ("explorer filtered", f"{env}/tasks?filter=param.lr%3A%3D%3A0.01&cols=param.lr,asset.metrics.acc,task_id"),
        ("explorer refused", f"{env}/tasks?filter=param.lr%3A%3E%3Ahigh"),
        ("locks", f"{env}/locks"),
        ("api keys", f"/ws/{ws}/settings/api-keys"),
        ("api keys with revoked", f"/ws/{ws}/settings/api-keys?include_revoked=true"),
        ("settings general", f"/ws/{ws}/settings"),
        ("settings members", f"/ws/{ws}/settings/members"),
        ("settings invites (personal)", f"/ws/{ws}/settings/invites"),
        ("settings environments", f"/ws/{ws}/settings/environments"),
        ("settings target roots", f"/ws/{ws}/settings/target-roots"),
        ("settings danger", f"/ws/{ws}/settings/danger"),
        ("account", "/account"),
        ("my invites", "/invites"),
        ("new workspace", "/workspaces/new"),
        ("not found", "/ws/nope/env/x/builds"),
    ]:
        page.goto(BASE + path)
        check(page, name, found)
    # The combobox's list, open (its options carry ids and roles of their own).
    page.goto(f"{BASE}{env}/tasks")
    page.get_by_label("Add a condition").fill("param.")
    expect(page.locator("#add-options [role=option]").first).to_be_visible()
    check(page, "explorer combobox open", found)

    # A team workspace (its invites form) with a pending invite for bob.
    page.goto(BASE + "/workspaces/new")
    page.locator("#nw-name").fill(f"A11y {tag}")
    expect(page.locator("#nw-slug")).to_have_value(slug)
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(re.compile(rf".*/ws/{slug}/env/main/connect$"))
    try:
        page.goto(f"{BASE}/ws/{slug}/settings/invites")
        page.locator("#invite-email").fill(bob)
        page.get_by_role("button", name="Invite").click()
        expect(page.get_by_text("Invite created")).to_be_visible()
        check(page, "settings invites (team)", found)

        guards = Guards()
        ctx = browser.new_context(viewport={"width": 1360, "height": 900})
        guards.watch(ctx)
        bob_page = ctx.new_page()
        try:
            bob_page.goto(BASE + "/login")
            bob_page.get_by_label("Email").fill(bob)
            bob_page.get_by_label("Password").fill(bob_pw)
            bob_page.get_by_role("button", name="Sign in").click()
            bob_page.wait_for_url(re.compile(r".*/ws/.*"))
            expect(bob_page.locator(".invites-notice")).to_be_visible()
            check(bob_page, "first page after sign-in (invites notice and badge)", found)
            bob_page.goto(BASE + "/invites")
            check(bob_page, "my invites (pending)", found)
        finally:
            ctx.close()
        assert not guards.errors, guards.errors
    finally:
        page.goto(f"{BASE}/ws/{slug}/settings/danger")
        page.locator("#confirm-ws").fill(slug)
        page.get_by_role("button", name="Delete workspace").click()
        page.wait_for_url(re.compile(r".*/ws/.*/env/.*"))
    assert not found, "\n".join(found)
