"""Downloads in a real browser: a holder downloads a weight file from the gate's page, and
creates, copies and revokes a personal token."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.test_browser import (
    browser,  # noqa: F401 - the shared Chromium
    page,  # noqa: F401 - a page that fails on CSP reports
)
from tests.test_browser_access import sign_in
from tests.weights import storages_for, weights_build, weights_server
from webapp.access.models import AuditEntry
from webapp.accounts.models import PersonalToken

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Site:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-weights")


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, weights_root):
    with weights_server(weights_root, "browser-downloads-web") as url:
        yield Site(url)


@pytest.fixture
def weights(settings, weights_root):
    settings.STORAGES = storages_for(weights_root)
    made = weights_build(weights_root)
    made.holder.emailaddress_set.create(email=made.holder.email, verified=True, primary=True)
    return made


def test_a_holder_downloads_a_weight_file_from_the_gates_page(page, site, weights):  # noqa: F811
    sign_in(page, site, weights.holder)
    page.goto(f"{site.url}/gates/{weights.gate.slug}/")
    row = page.locator('#weight-files tr[data-file="model.safetensors"]')
    file = weights.files["model.safetensors"]
    expect(row).to_contain_text(file.sha256)
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == "model.safetensors"
    assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == file.sha256
    assert AuditEntry.objects.filter(action="download", subject=weights.holder).count() == 1


def test_a_token_is_shown_once_then_listed_and_revoked(page, site, weights):  # noqa: F811
    sign_in(page, site, weights.holder)
    page.goto(f"{site.url}/accounts/tokens/")
    page.fill("input[name=name]", "cluster script")
    page.select_option("select[name=expiry]", "90")
    page.click("#token-form button[type=submit]")
    secret = page.locator("#token-secret").input_value()
    assert re.fullmatch(r"gh_[A-Za-z0-9]{40}", secret)
    page.goto(f"{site.url}/accounts/tokens/")
    expect(page.locator("#token-secret")).to_have_count(0)
    expect(page.locator("#token-list")).to_contain_text("cluster script")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#token-list")).to_contain_text("revoked")
    assert PersonalToken.objects.get(user=weights.holder).revoked_at is not None
