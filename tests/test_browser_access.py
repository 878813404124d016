"""Gated access in real browsers: a researcher applies, a reviewer approves in another
browser, the researcher chats with the gated model and downloads a weight file, and a
revocation ends the chat in the tab that is still open."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, GateFieldFactory, UserFactory, gate_factory
from tests.test_browser import SCREENSHOTS, browser  # noqa: F401 - the shared Chromium
from tests.weights import write_file
from webapp.access.models import AuditEntry, Grant
from webapp.weights.services import weight_file_attach, weights_storage

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pages(browser):  # noqa: F811
    """A page in each of two browser contexts (two people), both failing on CSP reports."""
    refused: list[str] = []
    contexts, opened = [], []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        contexts.append(context)
        opened.append(page)
    yield opened
    for context in contexts:
        context.close()
    assert refused == []


@pytest.fixture
def stored_weights() -> Iterator[tuple[str, bytes]]:
    """A file in the weights storage the live site reads (its default, as the test
    process's), in a folder of its own removed afterwards: its storage path and bytes."""
    root = Path(weights_storage().location)
    folder = f"browser-access-{uuid.uuid4().hex}"
    data = os.urandom(256 * 1024)
    write_file(root, f"{folder}/model.safetensors", data)
    yield f"{folder}/model.safetensors", data
    shutil.rmtree(root / folder, ignore_errors=True)


def sign_in(page: Page, site, user) -> None:
    page.goto(f"{site.url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def verified(**fields):
    user = UserFactory(**fields)
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    return user


def test_apply_get_approved_chat_download_and_a_revocation_ends_the_chat_in_the_open_tab(
    pages, live_site, worker, inference, openai_model, stored_weights
):
    researcher_page, reviewer_page = pages
    gate = gate_factory(slug="llama", name="LLaMA", levels=("chat", "weights"))
    GateFieldFactory(gate=gate, name="affiliation", label="Affiliation")
    storage_path, data = stored_weights
    weight_file_attach(gate=gate, name="model.safetensors", storage_path=storage_path)
    openai_model.access_policy, openai_model.gate = "gated", gate
    openai_model.save()
    researcher = verified(email="ada@example.edu")
    reviewer = verified(email="reviewer@example.org", is_staff=True)

    # The researcher applies on the gate's page.
    sign_in(researcher_page, live_site, researcher)
    researcher_page.goto(f"{live_site.url}/gates/llama/")
    expect(researcher_page.locator("#gate-licence")).to_contain_text("research")
    researcher_page.click("#request-access")
    researcher_page.fill("input[name=answer_affiliation]", "Analytical Engine Lab")
    researcher_page.check("input[name=levels][value=chat]")
    researcher_page.check("input[name=levels][value=weights]")
    researcher_page.check("input[name=accept_licence]")
    researcher_page.click("#submit-request")
    expect(researcher_page).to_have_url(re.compile(r"/access/$"))
    expect(researcher_page.locator("#my-requests")).to_contain_text("Pending review")

    # The reviewer, in another browser, approves it from the queue.
    sign_in(reviewer_page, live_site, reviewer)
    reviewer_page.goto(f"{live_site.url}/review/")
    row = reviewer_page.locator("#review-queue tr", has_text=researcher.email)
    expect(row).to_contain_text("Analytical Engine Lab")
    expect(row).to_contain_text("chat, weights")
    row.locator("input[name=request]").check()
    reviewer_page.click("#approve-button")
    expect(reviewer_page.locator("#flash-messages")).to_contain_text("Approved 1 request")
    assert sorted(Grant.objects.get(user=researcher).levels) == ["chat", "weights"]
    assert "was approved" in live_site.last_mail()

    # The researcher chats with the gated model.
    inference.push({"tokens": ["Hello", " from", " behind", " the", " gate"], "rate": 50})
    researcher_page.goto(f"{live_site.url}/models/{openai_model.slug}/")
    researcher_page.fill("#start-input", "Hello, gated model")
    researcher_page.click("#start-button")
    expect(researcher_page).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))
    reply = researcher_page.locator(".message[data-role=assistant]").last
    expect(reply.locator(".message-content")).to_have_text("Hello from behind the gate")
    expect(reply).to_have_attribute("data-status", "done")
    expect(researcher_page.locator("#send-button")).to_be_enabled()

    # In another tab, the chat left open, the researcher downloads the weight file.
    files_page = researcher_page.context.new_page()
    files_page.goto(f"{live_site.url}/gates/llama/")
    row = files_page.locator('#weight-files tr[data-file="model.safetensors"]')
    expect(row).to_contain_text(hashlib.sha256(data).hexdigest())
    with files_page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    assert info.value.suggested_filename == "model.safetensors"
    assert Path(info.value.path()).read_bytes() == data
    assert AuditEntry.objects.filter(action="download", subject=researcher).count() == 1
    files_page.close()

    # The reviewer revokes; the open tab is told at once and can send nothing more.
    reviewer_page.goto(f"{live_site.url}/review/grants/")
    holder = reviewer_page.locator("#holders tr", has_text=researcher.email)
    holder.locator("input[name=reason]").fill("The licence was breached.")
    holder.locator(".revoke-button").click()
    expect(reviewer_page.locator("#flash-messages")).to_contain_text("Revoked the access")

    notice = researcher_page.locator("#notice")
    expect(notice).to_contain_text("Your access to LLaMA was revoked: The licence was breached.")
    expect(researcher_page.locator("#chat")).to_have_attribute("data-refused", "true")
    expect(researcher_page.locator("#send-button")).to_be_disabled()
    expect(researcher_page.locator("#composer-input")).to_be_disabled()
    expect(researcher_page.locator(".regenerate-button").last).to_be_disabled()
    researcher_page.screenshot(path=str(SCREENSHOTS / "access-revoked.png"))
    requests_before = len(inference.requests(path="/v1/chat/completions"))
    researcher_page.reload()
    expect(researcher_page.locator("#notice-text")).to_contain_text("was revoked")
    assert len(inference.requests(path="/v1/chat/completions")) == requests_before
