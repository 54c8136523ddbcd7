"""Workspace management in a real browser (ui.md P9–P12): a team workspace made on
/workspaces/new, an invite accepted by a second user on /invites, a role change (and the
only owner refused a demotion), an environment created and deleted with its slug typed,
a password change followed by a sign-in with the new password, and the workspace
deleted from the danger zone. The second user registers through the API (run.sh turns
local registration on); the admin's password is never changed (other files sign in)."""

import re
import uuid

from playwright.sync_api import expect

from conftest import ADMIN_EMAIL, BASE, Guards, register_user, shot, sign_in


def sign_in_as(page, email, password):
    page.goto(BASE + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shots(page, name):
    """Wide (1360 px) and narrow (390 px) screenshots of the current page."""
    shot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, name + "-narrow")
    page.set_viewport_size({"width": 1360, "height": 900})


def test_team_invite_role_environment_password_and_delete(browser, page):
    tag = uuid.uuid4().hex[:6]
    slug, name = f"team-{tag}", f"Team {tag}"
    bob, bob_pw, bob_new = f"bob-{tag}@example.org", "bob password 1", "bob password 2"
    register_user(bob, bob_pw)
    settings = f"{BASE}/ws/{slug}/settings"

    # P10: the admin creates a team workspace and lands on its Connect page.
    sign_in(page)
    page.goto(BASE + "/workspaces/new")
    expect(page.get_by_text(re.compile(r"You have created \d of 3 workspaces"))).to_be_visible()
    # The slug follows the name as it is typed (the server's rule, in app.js).
    page.locator("#nw-name").fill(name)
    expect(page.locator("#nw-slug")).to_have_value(slug)
    page.locator("#nw-desc").fill("made by the browser suite")
    shots(page, "workspace-new")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(re.compile(rf".*/ws/{slug}/env/main/connect$"))

    # P9c: invite bob as a member.
    page.goto(settings + "/invites")
    page.locator("#invite-email").fill(bob)
    page.locator("#invite-role").select_option("member")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text("Invite created")).to_be_visible()
    expect(page.locator(f'tr[data-invite="{bob}"]')).to_be_visible()
    shots(page, "settings-invites")

    # P11: bob (a second browser) signs in: the first page offers the invite once, the
    # header shows "Invites (1)"; he accepts on /invites and lands in the workspace.
    guards = Guards()
    bob_ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    guards.watch(bob_ctx)
    bob_page = bob_ctx.new_page()
    try:
        sign_in_as(bob_page, bob, bob_pw)
        bob_page.wait_for_url(re.compile(r".*/ws/.*"))
        expect(bob_page.locator(".invites-notice")).to_contain_text("You are invited to 1 workspace")
        badge = bob_page.get_by_role("link", name="Invites (1)")
        expect(badge).to_be_visible()
        shots(bob_page, "invites-after-sign-in")
        bob_page.reload()
        expect(bob_page.locator(".invites-notice")).to_have_count(0)
        expect(badge).to_be_visible()
        badge.click()
        bob_page.wait_for_url(re.compile(r".*/invites$"))
        row = bob_page.locator(f'tr[data-invite="{name}"]')
        expect(row).to_contain_text("member")
        shots(bob_page, "my-invites")
        row.get_by_role("button", name="Accept").click()
        bob_page.wait_for_url(re.compile(rf".*/ws/{slug}/env/main/builds$"))
        expect(bob_page.locator("a.invites-badge")).to_have_count(0)

        # P9b: the admin makes bob an admin; it persists. The only owner cannot step down.
        page.goto(settings + "/members")
        bob_row = page.locator(f'tr[data-member="{bob}"]')
        bob_row.locator("select").select_option("admin")
        bob_row.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Role changed.")).to_be_visible()
        page.reload()
        expect(page.locator(f'tr[data-member="{bob}"] td.role')).to_have_text("admin")
        me = page.locator(f'tr[data-member="{ADMIN_EMAIL}"]')
        me.locator("select").select_option("member")
        me.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Workspace must keep at least one owner")).to_be_visible()
        shots(page, "settings-members")

        # P9d: create an environment; it is in the switcher; delete it with its slug.
        page.goto(settings + "/environments")
        # The slug follows the name until it is edited; then it stays the user's.
        page.locator("#env-name").fill("Staging Area")
        expect(page.locator("#env-slug")).to_have_value("staging-area")
        page.locator("#env-slug").fill("staging")
        page.locator("#env-name").fill("Staging")
        expect(page.locator("#env-slug")).to_have_value("staging")
        page.locator("#env-name").press("End")
        page.keyboard.type(" X")
        expect(page.locator("#env-slug")).to_have_value("staging")
        page.locator("#env-name").fill("Staging")
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_text("Environment created.")).to_be_visible()
        expect(page.locator("a.menu-env", has_text="Staging")).to_have_count(1)
        shots(page, "settings-environments")
        card = page.locator('section.env-edit[data-env="staging"]')
        card.locator('input[name="confirm"]').fill("Staging")
        card.get_by_role("button", name="Delete environment").click()
        expect(page.get_by_text("Type staging exactly to confirm")).to_be_visible()
        expect(page.locator('tr[data-env="staging"]')).to_have_count(1)
        card = page.locator('section.env-edit[data-env="staging"]')
        card.locator('input[name="confirm"]').fill("staging")
        card.get_by_role("button", name="Delete environment").click()
        expect(page.get_by_text("Environment deleted.")).to_be_visible()
        expect(page.locator('tr[data-env="staging"]')).to_have_count(0)
        # The last environment's delete button is disabled, with the reason.
        expect(page.locator('section.env-edit[data-env="main"] button.danger')).to_be_disabled()
        expect(page.get_by_text("The last environment cannot be deleted")).to_be_visible()

        # The other settings pages, for the record.
        page.goto(settings)
        shots(page, "settings-general")
        page.goto(settings + "/target-roots")
        shots(page, "settings-target-roots")

        # P12: bob changes his password, stays signed in, then signs in with the new one.
        bob_page.goto(BASE + "/account")
        bob_page.locator("#pw-current").fill(bob_pw)
        bob_page.locator("#pw-new").fill(bob_new)
        bob_page.locator("#pw-again").fill(bob_new)
        shots(bob_page, "account")
        bob_page.get_by_role("button", name="Change password").click()
        expect(bob_page.get_by_text("Password changed")).to_be_visible()
        bob_page.goto(f"{BASE}/ws/{slug}/settings/members")
        expect(bob_page.locator(f'tr[data-member="{bob}"] td.role')).to_have_text("admin")
        bob_page.get_by_text(bob).first.click()
        bob_page.get_by_role("button", name="Sign out").click()
        bob_page.wait_for_url(re.compile(r".*/login$"))
        sign_in_as(bob_page, bob, bob_pw)
        expect(bob_page.get_by_text("Invalid email or password")).to_be_visible()
        sign_in_as(bob_page, bob, bob_new)
        bob_page.wait_for_url(re.compile(r".*/ws/.*"))
    finally:
        bob_ctx.close()
    assert not guards.errors, guards.errors

    # P9g: the owner deletes the workspace with its slug typed; its URLs are 404.
    page.goto(settings + "/danger")
    page.locator("#confirm-ws").fill(slug)
    shots(page, "settings-danger")
    page.get_by_role("button", name="Delete workspace").click()
    page.wait_for_url(re.compile(r".*/ws/.*/env/.*"))
    expect(page.locator("a.menu-env", has_text="Staging")).to_have_count(0)
    page.goto(settings)
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
