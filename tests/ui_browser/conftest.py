"""Fixtures of the real-browser suite (ui.md §8).

One Chromium (Debian's, through ``executable_path``) per session and a fresh context
per test. Every test runs under three guards — no console error (CSP violations
included), no JS dialog (the XSS canary), no request off the server's origin — and a
failing test leaves a full-page screenshot and its DOM in ``target/ui-artifacts``.
"""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

BASE = os.environ["UI_TEST_URL"]
ARTIFACTS = Path(os.environ.get("UI_TEST_ARTIFACTS", "target/ui-artifacts")).resolve()
CHROMIUM = os.environ.get("UI_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # Chromium's autofill touches inputs' inline style, which the strict CSP
         # reports as a violation that is not the page's.
         "--disable-features=Autofill,AutofillServerCommunication"]
ADMIN_EMAIL = os.environ["UI_TEST_ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["UI_TEST_ADMIN_PASSWORD"]
API_KEY = os.environ["UI_TEST_API_KEY"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Guards:
    """Collects what must never happen; checked after each test."""

    def __init__(self):
        self.errors = []

    def watch(self, context):
        origin = BASE.rstrip("/")

        def on_request(req):
            url = req.url
            if not (url == origin or url.startswith(origin + "/") or url.startswith("data:")):
                self.errors.append(f"request off the origin: {url}")

        context.on("request", on_request)
        context.on("page", self.watch_page)

    def watch_page(self, page):
        def on_console(msg):
            # A page answered with 401/404 on purpose logs its own status; any other
            # failed load (an asset, a poll) and every CSP violation is an error.
            own_status = (msg.text.startswith("Failed to load resource")
                          and msg.location.get("url") == page.url)
            if msg.type == "error" and not own_status:
                self.errors.append(f"console error: {msg.text}")

        def on_dialog(dialog):
            self.errors.append(f"JS dialog opened: {dialog.type} {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("dialog", on_dialog)


def _context(browser, request, **kwargs):
    guards = Guards()
    context = browser.new_context(viewport={"width": 1360, "height": 900}, **kwargs)
    guards.watch(context)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(context.pages):
            stem = ARTIFACTS / f"{request.node.name}-{i}"
            try:
                p.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(p.content())
                print(f"ui-test: saved {stem}.png and .html", file=sys.stderr)
            except Exception as e:  # a crashed page still fails the test itself
                print(f"ui-test: no screenshot: {e}", file=sys.stderr)
    context.close()
    assert not guards.errors, guards.errors


@pytest.fixture
def page(browser, request):
    yield from _context(browser, request)


@pytest.fixture
def nojs_page(browser, request):
    yield from _context(browser, request, java_script_enabled=False)


def shot(page, name):
    """A screenshot of a page worth looking at (kept for docs and review)."""
    out = ARTIFACTS / "pages"
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


# The session cookie of the first sign-in: later sign_in calls reuse it, since the server
# allows 10 login attempts per (email, client) in 5 minutes (D11) and the suite has more
# tests than that. The login form itself is tested in test_ui.py on its own.
_SESSION = {}


def sign_in(page, next_path="/"):
    if "cookies" in _SESSION:
        page.context.add_cookies(_SESSION["cookies"])
        page.goto(f"{BASE}{next_path}")
    else:
        page.goto(f"{BASE}/login?next={next_path}")
        page.get_by_label("Email").fill(ADMIN_EMAIL)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/(ws|account).*"))
    _SESSION.setdefault("cookies", page.context.cookies())


def home_env(page):
    """``/ws/<slug>/env/<env>`` of the page's environment."""
    m = re.search(r"(/ws/[^/]+/env/[^/]+)", page.url)
    assert m, page.url
    return m.group(1)


def api(method, path, body=None, key=None):
    """The JSON API with an API key: (status, body)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("X-API-Key", key or API_KEY)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, None


def register_user(email, password):
    """Registers a local user through the API (the server runs with registration on)."""
    req = urllib.request.Request(
        BASE + "/api/v1/auth/register", method="POST",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 201


def start_sdk(python, script, env_extra):
    """Starts a real SDK process on one of the DAG scripts here (no STARDAG_* leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARDAG_", "MODAL_"))}
    env.update(env_extra)
    return subprocess.Popen([python, str(Path(__file__).parent / script)], env=env,
                            cwd=os.environ.get("UI_TEST_TMP", "/tmp"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
