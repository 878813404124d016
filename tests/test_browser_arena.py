"""In a real browser: a blind battle of two turns, both replies streaming side by side,
a vote, and the names revealed with links to the models' pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.arena import arena_model
from tests.factories import UserFactory
from tests.test_browser import SCREENSHOTS, browser, page, sign_in  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Four seconds of streaming each: long enough that both sides are seen streaming together
# even when one starts a little late on a busy machine.
SLOW = {"tokens": [f" wave{i}" for i in range(40)], "rate": 10}
OTHER = {"tokens": [f" gull{i}" for i in range(40)], "rate": 10}
BOTH_STREAMING = """(index) => {
    const turn = document.querySelectorAll('.arena-turn')[index];
    if (!turn) return false;
    const sides = [...turn.querySelectorAll('.arena-side')];
    return sides.length === 2 && sides.every(
        (s) => s.dataset.status === 'streaming'
            && s.querySelector('.arena-reply').textContent.trim()
    );
}"""


def turn_sides(tab: Page, index: int):
    return tab.locator(".arena-turn").nth(index).locator(".arena-side")


SIDES = """(index) => [...(document.querySelectorAll('.arena-turn')[index]
    ?.querySelectorAll('.arena-side') ?? [])].map(
    (s) => [s.dataset.status, s.querySelector('.arena-reply').textContent.slice(0, 40)])"""


def send(tab: Page, text: str, index: int) -> None:
    tab.fill("#arena-input", text)
    tab.click("#arena-send")
    try:
        tab.wait_for_function(BOTH_STREAMING, arg=index)  # side by side, at the same time
    except PlaywrightTimeoutError:
        raise AssertionError(f"never both streaming: {tab.evaluate(SIDES, index)}") from None
    expect(tab.locator("#vote")).to_be_hidden()
    for side in range(2):
        expect(turn_sides(tab, index).nth(side)).to_have_attribute(
            "data-status", "done", timeout=15_000
        )


def test_a_blind_battle_of_two_turns_then_a_vote_reveals_the_names(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
):
    arena_model("puffin-9b", display_name="Puffin 9B", url=inference.url, words="Puffinco")
    arena_model("tern-3b", display_name="Tern 3B", url=inference.url, words="Ternworks")
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    sign_in(page, live_site, user.email)
    page.click("#nav-arena")
    expect(page).to_have_url(re.compile(r"/arena/$"))

    inference.push(SLOW, OTHER)
    send(page, "Describe the coast.", 0)
    expect(page).to_have_url(re.compile(r"/arena/[0-9a-f-]+/$"))
    expect(page.locator("#vote")).to_be_visible()
    inference.push(OTHER, SLOW)
    send(page, "And the birds?", 1)
    texts = {turn_sides(page, 1).nth(i).locator(".arena-reply").inner_text() for i in range(2)}
    assert {t.split()[0] for t in texts} == {"wave0", "gull0"}
    html = page.content()
    for secret in ("Puffin", "puffin-9b", "Tern 3B", "tern-3b", "Ternworks", "scripted/"):
        assert secret not in html, secret
    page.screenshot(path=str(SCREENSHOTS / "arena-battle.png"))

    page.click("#vote-b")
    reveal = page.locator("#reveal")
    expect(reveal).to_be_visible()
    names = {page.locator("#reveal-a").inner_text(), page.locator("#reveal-b").inner_text()}
    assert names == {"Puffin 9B", "Tern 3B"}
    href = page.locator("#reveal-a").get_attribute("href")
    assert href in ("/models/puffin-9b/", "/models/tern-3b/")
    expect(page.locator("#reveal-vote")).to_have_text("Your vote: B is better.")
    expect(page.locator("#reveal-counted")).to_contain_text("younger than")  # a new account
    expect(page.locator("#arena-composer")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "arena-reveal.png"))

    page.reload()
    expect(page.locator("#reveal")).to_be_visible()
    expect(page.locator(".arena-turn")).to_have_count(2)
    page.click("#reveal-a")
    expect(page).to_have_url(re.compile(r"/models/(puffin-9b|tern-3b)/$"))


def test_stop_ends_both_replies_and_keeps_what_they_wrote(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
):
    arena_model("stop-one", url=inference.url)
    arena_model("stop-two", url=inference.url)
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    sign_in(page, live_site, user.email)
    page.goto(f"{live_site.url}/arena/")
    inference.push({"n_tokens": 400, "rate": 20}, {"n_tokens": 400, "rate": 20})
    page.fill("#arena-input", "Count slowly")
    page.click("#arena-send")
    page.wait_for_function(BOTH_STREAMING, arg=0)
    page.click("#arena-stop")
    for side in range(2):
        expect(turn_sides(page, 0).nth(side)).to_have_attribute("data-status", "stopped")
        expect(turn_sides(page, 0).nth(side).locator(".arena-reply")).to_contain_text("tok0")
    expect(page.locator("#arena-stop")).to_be_hidden()
    expect(page.locator("#arena-send")).to_be_enabled()
    expect(page.locator("#vote")).to_be_hidden()  # no reply finished: nothing to vote on yet
