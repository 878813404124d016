"""A conversation's system prompt, parameters and model, and presets: what reaches the
model, what the settings page offers, and bad values refused with nothing saved."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import LanguageModelFactory, MessageFactory, UserFactory, reply_factory
from webapp.chat import configure, selectors, services
from webapp.chat.models import Conversation, Preset
from webapp.core.errors import PermissionDenied, ValidationFailed
from webapp.generations.models import Generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(unqueued, user, openai_model):
    sent = services.conversation_start(user=user, model=openai_model, content="Hello")
    Generation.objects.filter(pk=sent.assistant_message.generation_id).update(
        status="done", text="Hi"
    )
    return sent.user_message.conversation


@pytest.fixture
def browser_client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_system_prompt_comes_first_and_the_parameters_are_sent(chat, user):
    configure.conversation_configure(
        user=user,
        conversation_id=chat.pk,
        system_prompt="Answer in one word.",
        params={"temperature": 0.3, "seed": 7, "stop": ["END"], "top_k": 40},
    )
    sent = services.message_send(user=user, conversation_id=chat.pk, content="Why?")
    generation = Generation.objects.get(pk=sent.assistant_message.generation_id)
    assert generation.messages[0] == {"role": "system", "content": "Answer in one word."}
    assert [m["content"] for m in generation.messages[1:]] == ["Hello", "Hi", "Why?"]
    assert generation.params == {
        "max_new_tokens": 64,  # the model's default, kept
        "temperature": 0.3,
        "top_k": 40,
        "stop": ["END"],
        "seed": 7,
    }
    # Regenerating with the same settings repeats the exact input: one system prompt.
    Generation.objects.filter(pk=generation.pk).update(status="done", text="Because")
    again = services.message_regenerate(
        user=user, message_id=sent.assistant_message.pk, same_settings=True
    )
    assert Generation.objects.get(pk=again.generation_id).messages == generation.messages


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": 10**7}, "max_new_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": -1}, "seed"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"flavour": 1}, "flavour"),
    ],
)
def test_a_value_out_of_range_is_refused_and_nothing_is_saved(chat, user, params, named):
    with pytest.raises(ValidationFailed) as refused:
        configure.conversation_configure(
            user=user, conversation_id=chat.pk, system_prompt="New prompt", params=params
        )
    assert named in refused.value.detail
    chat.refresh_from_db()
    assert (chat.system_prompt, chat.params) == ("", {})


def test_switching_the_model_applies_to_the_next_reply_and_each_reply_names_its_model(
    chat, user, openai_model
):
    other = LanguageModelFactory(slug="other-model", display_name="Other Model")
    configure.conversation_configure(
        user=user, conversation_id=chat.pk, system_prompt="", params={}, model_slug=other.slug
    )
    sent = services.message_send(user=user, conversation_id=chat.pk, content="And you?")
    assert Generation.objects.get(pk=sent.assistant_message.generation_id).language_model == other
    chat.refresh_from_db()
    names = [
        selectors.message_serialize(m)["generation"]["model"]["name"]
        for m in selectors.message_tree(conversation=chat)
        if m.role == "assistant"
    ]
    assert names == [openai_model.display_name, "Other Model"]


def test_a_model_the_user_may_not_use_is_refused(chat, user):
    hidden = LanguageModelFactory(slug="staff-only", access_policy="staff")
    with pytest.raises(ValidationFailed):
        configure.conversation_configure(
            user=user, conversation_id=chat.pk, system_prompt="", params={}, model_slug=hidden.slug
        )
    chat.refresh_from_db()
    assert chat.model.slug != "staff-only"


def test_presets_save_start_and_publish(chat, user, openai_model):
    configure.conversation_configure(
        user=user, conversation_id=chat.pk, system_prompt="Be a pirate.", params={"seed": 3}
    )
    preset = configure.preset_create(user=user, conversation_id=chat.pk, name=" Pirate ")
    assert (preset.name, preset.system_prompt, preset.params) == (
        "Pirate",
        "Be a pirate.",
        {"seed": 3},
    )
    with pytest.raises(ValidationFailed):
        configure.preset_create(user=user, conversation_id=chat.pk, name="Pirate")
    with pytest.raises(PermissionDenied):
        configure.preset_create(user=user, conversation_id=chat.pk, name="Shared", public=True)
    with pytest.raises(PermissionDenied):
        configure.preset_publish(user=user, preset_id=preset.pk, public=True)
    assert Preset.objects.count() == 1

    stranger = UserFactory()
    assert selectors.preset_get_usable(user=stranger, preset_id=preset.pk) is None
    staff = UserFactory(is_staff=True)
    staff_chat = services.conversation_start(user=staff, model=openai_model, content="x")
    shared = configure.preset_create(
        user=staff,
        conversation_id=staff_chat.user_message.conversation_id,
        name="House style",
        public=True,
    )
    assert selectors.preset_get_usable(user=stranger, preset_id=shared.pk) == shared

    started = services.conversation_start(
        user=user, model=openai_model, content="Ahoy", preset=preset
    )
    conversation = started.user_message.conversation
    assert (conversation.system_prompt, conversation.params) == ("Be a pirate.", {"seed": 3})
    generation = Generation.objects.get(pk=started.assistant_message.generation_id)
    assert generation.messages[0]["content"] == "Be a pirate."
    assert generation.params["seed"] == 3


def test_starting_from_a_preset_on_the_home_page(browser_client, user, openai_model, unqueued):
    staff = UserFactory(is_staff=True)
    shared = Preset.objects.create(
        user=staff, name="Terse", system_prompt="Short answers.", params={}, public=True
    )
    page = browser_client.get(f"/?preset={shared.pk}")
    assert re.search(rf'<option value="{shared.pk}" selected>Terse \(published\)', page.text)
    response = browser_client.post(
        "/c/new", {"model": openai_model.slug, "content": "Hi", "preset": str(shared.pk)}
    )
    assert response.status_code == 302
    assert Conversation.objects.get(user=user).system_prompt == "Short answers."
    private = Preset.objects.create(user=staff, name="Mine", system_prompt="x", public=False)
    refused = browser_client.post(
        "/c/new", {"model": openai_model.slug, "content": "Hi", "preset": str(private.pk)}
    )
    assert refused.status_code == 400
    assert Conversation.objects.filter(user=user).count() == 1


def test_the_settings_controls_carry_the_backends_ranges(browser_client, chat):
    page = browser_client.get(chat.get_absolute_url()).text
    # openai: 0 <= temperature <= 2, 0 < top_p <= 1 (one step inside the open bound).
    top_p = re.search(r'<input[^>]*name="top_p"[^>]*>', page).group(0)
    assert 'min="0.01"' in top_p and 'max="1.0"' in top_p
    temperature = re.search(r'<input[^>]*name="temperature"[^>]*>', page).group(0)
    assert 'max="2.0"' in temperature and 'placeholder="default 0.7"' in temperature
    tokens = re.search(r'<input[^>]*name="max_new_tokens"[^>]*>', page).group(0)
    assert f'max="{chat.model.context_length - 1}"' in tokens
    # TGI: 0 < top_p < 1 and temperature > 0, no upper bound.
    tgi = LanguageModelFactory(slug="a-tgi-model", backend="tgi")
    tgi_chat = Conversation.objects.create(user=chat.user, model=tgi, title="TGI")
    page = browser_client.get(tgi_chat.get_absolute_url()).text
    top_p = re.search(r'<input[^>]*name="top_p"[^>]*>', page).group(0)
    assert 'min="0.01"' in top_p and 'max="0.99"' in top_p
    temperature = re.search(r'<input[^>]*name="temperature"[^>]*>', page).group(0)
    assert 'min="0.01"' in temperature and "max=" not in temperature


def test_the_settings_form_saves_and_a_bad_value_changes_nothing(browser_client, chat):
    url = f"/c/{chat.pk}/settings"
    form = {
        "model": chat.model.slug,
        "system_prompt": "Be kind.",
        "temperature": "0.2",
        "stop": "STOP\n\nEND\n",
    }
    assert browser_client.post(url, form).status_code == 302
    chat.refresh_from_db()
    assert (chat.system_prompt, chat.params) == (
        "Be kind.",
        {"temperature": 0.2, "stop": ["STOP", "END"]},
    )

    bad = browser_client.post(url, {**form, "system_prompt": "Changed", "top_p": "0"})
    assert bad.status_code == 400
    assert "top_p must be greater than 0" in bad.text
    bad = browser_client.post(url, {**form, "system_prompt": "Changed", "seed": "1.5"})
    assert bad.status_code == 400
    assert "whole number" in bad.text
    chat.refresh_from_db()
    assert chat.system_prompt == "Be kind."
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.post(url, form).status_code == 404


def _conversation_of(user, model, turns: int) -> Conversation:
    conversation = Conversation.objects.create(user=user, model=model, title="Long")
    parent = None
    for index in range(turns):
        question = MessageFactory(conversation=conversation, parent=parent, content=f"Q{index}")
        parent = reply_factory(conversation=conversation, parent=question, text=f"A{index}")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=parent)
    return conversation


def test_opening_a_conversation_takes_as_many_queries_for_2000_messages_as_for_10(
    browser_client, user, openai_model
):
    counts = []
    for turns in (5, 1000):  # 10 and 2,000 messages
        conversation = _conversation_of(user, openai_model, turns)
        with CaptureQueriesContext(connection) as queries:
            response = browser_client.get(conversation.get_absolute_url())
        assert response.status_code == 200
        assert f"Q{turns - 1}" in response.text
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_presets_page_lists_publishes_and_deletes_only_ones_own(browser_client, chat, user):
    mine = Preset.objects.create(user=user, name="Mine", system_prompt="Be brief.")
    staff = UserFactory(is_staff=True)
    theirs = Preset.objects.create(user=staff, name="House", public=True)
    hidden = Preset.objects.create(user=staff, name="Draft")
    page = browser_client.get("/presets/").text
    assert "Mine" in page and "House" in page and "Draft" not in page
    assert f"?preset={theirs.pk}" in page
    # Not staff: no publishing; someone else's preset cannot be deleted.
    assert browser_client.post(f"/presets/{mine.pk}/publish", {"public": "true"}).status_code == 302
    mine.refresh_from_db()
    assert mine.public is False
    assert browser_client.post(f"/presets/{theirs.pk}/delete").status_code == 404
    assert browser_client.post(f"/presets/{hidden.pk}/delete").status_code == 404
    assert Preset.objects.count() == 3
    assert browser_client.post(f"/presets/{mine.pk}/delete").status_code == 302
    assert not Preset.objects.filter(pk=mine.pk).exists()

    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.post(f"/presets/{hidden.pk}/publish", {"public": "true"}).status_code == 302
    hidden.refresh_from_db()
    assert hidden.public is True
    assert "Draft" in browser_client.get("/presets/").text


def test_saving_a_preset_from_the_settings_panel(browser_client, chat, user):
    url = f"/c/{chat.pk}/preset"
    assert browser_client.post(url, {"name": "Calm"}).status_code == 302
    refused = browser_client.post(url, {"name": "Calm"})
    assert refused.status_code == 400 and "already" in refused.text
    refused = browser_client.post(url, {"name": "Loud", "public": "on"})
    assert refused.status_code == 400 and "Only staff" in refused.text
    assert browser_client.post(url, {"name": ""}).status_code == 400
    assert list(Preset.objects.values_list("name", flat=True)) == ["Calm"]
