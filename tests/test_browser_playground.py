"""The playground in a real browser: a completion streams from the scripted server, the
token view colours each token and shows its alternatives on hover, stop closes the request,
an out-of-range value is refused before anything is sent, and a reload shows the tab's last
completion again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import UserFactory
from tests.test_browser import SCREENSHOTS, browser, page, sign_in  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKENS = [" over", " the", " <b>lazy</b>", " dog", "."]
LOGPROBS = [-0.05, -0.7, -2.3, -0.2, -1.1]


def open_playground(page, site, model) -> None:  # noqa: F811
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    sign_in(page, site, user.email)
    page.click("#nav-playground")
    expect(page.locator("#playground-form")).to_be_visible()
    page.goto(f"{site.url}/playground/?model={model.slug}")
    expect(page.locator("#model-select")).to_have_value(model.slug)
    expect(page.locator("#run-button")).to_be_enabled()


def test_a_completion_shows_the_token_view_with_alternatives_on_hover(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    tgi_model,
):
    open_playground(page, live_site, tgi_model)
    page.fill("#param-temperature", "0")  # TGI takes only temperature > 0
    page.fill("#prompt-input", "The quick brown fox jumps")
    page.click("#run-button")
    expect(page.locator("#playground-error")).to_contain_text("temperature")
    assert inference.generations() == []  # refused in the page: nothing sent

    page.fill("#param-temperature", "0.5")
    inference.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 20})
    page.click("#run-button")
    expect(page.locator("#run-state")).to_have_attribute("data-status", "done")
    expect(page.locator("#output-text")).to_have_text("".join(TOKENS))
    assert page.locator("#output b").count() == 0  # model text is text, never markup

    page.click("#tab-tokens")
    tokens = page.locator("#token-view .token")
    expect(tokens).to_have_count(len(TOKENS))
    assert [tokens.nth(i).get_attribute("data-p") for i in range(len(TOKENS))] == [
        "9",  # 95 %
        "4",  # 50 %
        "1",  # 10 %
        "8",  # 82 %
        "3",  # 33 %
    ]
    alternatives = tokens.nth(2).locator(".token-alts")
    expect(alternatives).to_be_hidden()
    tokens.nth(2).hover()
    expect(alternatives).to_be_visible()
    expect(alternatives).to_contain_text('" <b>lazy</b>"')
    expect(alternatives).to_contain_text('" alt1"')
    expect(alternatives).to_contain_text("10 %")
    assert page.locator("#token-view b").count() == 0
    sent = inference.requests(path="/generate_stream")[-1]["body"]
    assert sent["inputs"] == "The quick brown fox jumps"
    assert sent["parameters"]["top_n_tokens"] == 3 and sent["parameters"]["temperature"] == 0.5

    page.click("#code-button")
    expect(page.locator("#code-curl")).to_contain_text("/v1/completions")
    expect(page.locator("#code-backend")).to_contain_text("generate_stream(")
    tokens.nth(2).hover()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "playground.png", full_page=True)

    page.reload()  # the tab's last completion comes back as saved, token view included
    expect(page.locator("#output-text")).to_have_text("".join(TOKENS))
    expect(page.locator("#run-state")).to_have_attribute("data-status", "done")
    expect(page.locator("#token-view .token")).to_have_count(len(TOKENS))


def test_stop_ends_the_completion_and_closes_the_request(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    open_playground(page, live_site, openai_model)
    inference.push({"n_tokens": 400, "rate": 20})
    page.fill("#prompt-input", "Count:")
    page.click("#run-button")
    expect(page.locator("#output-text")).to_contain_text("tok2")
    page.reload()  # mid-stream: the page follows it on from its token log
    expect(page.locator("#output-text")).to_contain_text(" tok0 tok1 tok2")
    expect(page.locator("#output-text")).to_contain_text("tok6")
    page.click("#stop-button")
    expect(page.locator("#run-state")).to_have_attribute("data-status", "stopped")
    assert inference.wait_for_disconnect(timeout=3)["path"] == "/v1/completions"
    expect(page.locator("#run-button")).to_be_enabled()
    page.click("#tab-tokens")
    expect(page.locator("#token-view .token").first).to_be_visible()  # logprobs by default
