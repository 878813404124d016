"""The leaderboard in a real browser: staff recompute it, and the pictures are drawn without
script and within the page's content security policy."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.factories import LanguageModelFactory, UserFactory
from tests.test_browser import SCREENSHOTS, browser  # noqa: F401 - the shared Chromium
from tests.test_browser_access import sign_in, verified
from webapp.arena.models import Battle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):  # noqa: F811
    refused: list[str] = []
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, java_script_enabled=False
    )
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    opened.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield opened
    context.close()
    assert refused == []


def test_staff_recompute_the_board_and_read_it_without_javascript(page, live_site):
    names = ["Granite", "Basalt", "Pumice", "Obsidian"]
    models = [LanguageModelFactory(slug=n.lower(), display_name=n) for n in names]
    voter = UserFactory()
    # Each model beats every model after it 3 times out of 4.
    Battle.objects.bulk_create(
        Battle(
            user=voter,
            model_a=models[i],
            model_b=models[j],
            winner="model_a" if k < 3 else "model_b",
            voted_at=timezone.now(),
            counted=True,
        )
        for i in range(4)
        for j in range(i + 1, 4)
        for k in range(4)
    )
    staff = verified(is_staff=True)
    page.goto(f"{live_site.url}/leaderboard/")
    expect(page.locator("#leaderboard-empty")).to_contain_text("No leaderboard yet")
    sign_in(page, live_site, staff)
    page.goto(f"{live_site.url}/leaderboard/")
    page.click("#recompute")
    expect(page.locator("#flash-messages")).to_contain_text("Recomputed from 24 votes")
    expect(page.locator("#leaderboard-when")).to_contain_text("from 24 votes")
    rows = page.locator("#leaderboard-table tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("Granite")
    expect(rows.last).to_contain_text("Obsidian")
    for chart in ("#ratings-chart", "#wins-heatmap", "#battles-heatmap"):
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100, chart
    # The heatmap cells are coloured: Granite's row against Basalt is on the blue side.
    cell = page.locator("#wins-heatmap g", has_text="Granite beat Basalt in 75%").locator("rect")
    assert cell.get_attribute("fill") not in (None, "", "none")
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)
