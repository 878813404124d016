"""Compare: 2 to 4 models answer the same turns side by side, each column with its own
history; bad input saves nothing; a row counts as one request; a column continues as a chat."""

from __future__ import annotations

import contextlib
import json

import pytest
from django.test import Client

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from webapp.access.models import AuditEntry
from webapp.arena.compare.models import CompareSession, CompareTurn
from webapp.arena.compare.services import compare_continue, compare_send, compare_start
from webapp.chat.models import Conversation, Message
from webapp.chat.services import conversation_start
from webapp.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webapp.generations.limits import LimitReached, running_count
from webapp.generations.models import Generation, Origin, Status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def models(db):
    made = []
    for slug, backend in (("alpha", "openai"), ("beta", "tgi"), ("gamma", "openai")):
        model = LanguageModelFactory(slug=slug, backend=backend)
        ModelEndpointFactory(model=model)
        made.append(model)
    return made


@pytest.fixture
def slugs(models):
    return [m.slug for m in models]


@pytest.fixture
def limits(settings):
    settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, "CONCURRENT": 2}


def replies_of(session: CompareSession, index: int) -> list[Generation]:
    turn = CompareTurn.objects.get(session=session, index=index)
    return [
        r.generation for r in turn.replies.select_related("generation").order_by("column__index")
    ]


def answer(generations: list[Generation], texts: list[str], status: str = Status.DONE) -> None:
    for generation, text in zip(generations, texts, strict=True):
        Generation.objects.filter(pk=generation.pk).update(status=status, text=text)


def nothing_saved() -> bool:
    return not CompareSession.objects.exists() and not Generation.objects.exists()


def test_one_prompt_goes_to_every_column_with_the_same_parameters_and_seed(user, slugs, unqueued):
    session = compare_start(
        user=user, model_slugs=slugs, content="Name a colour.", params={"temperature": 0.2}
    )
    generations = replies_of(session, 0)
    assert [g.language_model.slug for g in generations] == slugs
    assert {g.origin for g in generations} == {Origin.COMPARE}
    assert {g.channel_group for g in generations} == {session.group}
    assert all(g.messages == [{"role": "user", "content": "Name a colour."}] for g in generations)
    seeds = {g.params["seed"] for g in generations}
    assert seeds == {session.params["seed"]}
    assert {g.params["temperature"] for g in generations} == {0.2}
    assert session.title == "Name a colour."


def test_a_seed_is_chosen_when_none_is_given_and_kept_when_one_is(user, slugs, unqueued):
    chosen = compare_start(user=user, model_slugs=slugs[:2], content="Hi")
    assert isinstance(chosen.params["seed"], int)
    given = compare_start(user=user, model_slugs=slugs[:2], content="Hi", params={"seed": 42})
    assert given.params["seed"] == 42
    assert {g.params["seed"] for g in replies_of(given, 0)} == {42}


def test_each_column_answers_the_next_turn_from_its_own_history(user, slugs, unqueued):
    session = compare_start(user=user, model_slugs=slugs, content="First")
    answer(replies_of(session, 0), ["from alpha", "from beta", "from gamma"])

    row = compare_send(user=user, session_id=session.pk, content="Second")

    assert row.turn.index == 1
    for generation, own in zip(replies_of(session, 1), ["alpha", "beta", "gamma"], strict=True):
        assert generation.messages == [
            {"role": "user", "content": "First"},
            {"role": "assistant", "content": f"from {own}"},
            {"role": "user", "content": "Second"},
        ]


def test_a_reply_that_failed_is_left_out_of_its_columns_next_input(user, slugs, unqueued):
    session = compare_start(user=user, model_slugs=slugs[:2], content="First")
    first, second = replies_of(session, 0)
    answer([first], ["fine"])
    answer([second], ["half a thou"], status=Status.FAILED)

    compare_send(user=user, session_id=session.pk, content="Again")

    next_first, next_second = replies_of(session, 1)
    assert [m["content"] for m in next_first.messages] == ["First", "fine", "Again"]
    assert [m["content"] for m in next_second.messages] == ["First", "Again"]


def test_a_turn_is_refused_while_a_column_still_runs(user, slugs, unqueued):
    session = compare_start(user=user, model_slugs=slugs[:2], content="First")
    first, _ = replies_of(session, 0)
    answer([first], ["done already"])  # the other one is still queued

    with pytest.raises(Conflict) as refused:
        compare_send(user=user, session_id=session.pk, content="Too soon")
    assert refused.value.code == "busy"
    assert CompareTurn.objects.filter(session=session).count() == 1


@pytest.mark.parametrize(
    ("chosen", "content", "params", "message"),
    [
        (["alpha"], "Hi", None, "Choose 2 to 4 models"),
        (["alpha", "beta", "gamma", "delta", "epsilon"], "Hi", None, "Choose 2 to 4 models"),
        (["alpha", "alpha"], "Hi", None, "Choose each model once"),
        (["alpha", "nope"], "Hi", None, "There is no model 'nope'"),
        (["alpha", "beta"], "   ", None, "Type a message first"),
        (["alpha", "beta"], "x" * 40_000, None, "too long"),
        (["alpha", "beta"], "Hi", {"temperature": -1}, "temperature must be"),
        (["alpha", "beta"], "Hi", {"top_p": 1.0}, "Beta: top_p must be"),  # TGI: top_p < 1
        (["alpha", "beta"], "Hi", {"seed": 2**40}, "seed must be below"),
        (["alpha", "beta"], "Hi", {"stop": ["x"]}, "Unknown parameter"),
    ],
)
def test_bad_input_gets_a_clear_error_and_saves_nothing(
    user, models, unqueued, chosen, content, params, message
):
    for slug in ("delta", "epsilon"):
        LanguageModelFactory(slug=slug)
    with pytest.raises(ValidationFailed) as refused:
        compare_start(user=user, model_slugs=chosen, content=content, params=params)
    assert message in refused.value.detail
    assert nothing_saved()


def test_a_model_the_user_may_not_use_is_refused_by_name_and_nothing_is_saved(
    user, slugs, unqueued
):
    LanguageModelFactory(slug="secret", display_name="Secret", access_policy="private")
    with pytest.raises(PermissionDenied) as refused:
        compare_start(user=user, model_slugs=[slugs[0], "secret"], content="Hi")
    assert refused.value.detail.startswith("Secret:")
    assert nothing_saved()


def test_a_model_closed_after_the_start_refuses_the_next_turn_and_its_continue(
    user, models, unqueued
):
    session = compare_start(user=user, model_slugs=["alpha", "beta"], content="First")
    answer(replies_of(session, 0), ["a", "b"])
    models[1].access_policy = "private"
    models[1].save()

    with pytest.raises(PermissionDenied, match="Beta"):
        compare_send(user=user, session_id=session.pk, content="Second")
    assert CompareTurn.objects.filter(session=session).count() == 1
    beta = session.columns.get(index=1)
    with pytest.raises(PermissionDenied):
        compare_continue(user=user, session_id=session.pk, column_id=beta.pk)
    assert not Conversation.objects.exists()


def test_someone_elses_session_is_not_found(user, slugs, unqueued):
    session = compare_start(user=user, model_slugs=slugs[:2], content="Mine")
    stranger = UserFactory()
    with pytest.raises(NotFound):
        compare_send(user=stranger, session_id=session.pk, content="Theirs")
    column = session.columns.first()
    with pytest.raises(NotFound):
        compare_continue(user=stranger, session_id=session.pk, column_id=column.pk)
    assert CompareTurn.objects.count() == 1


def test_a_row_of_three_columns_counts_as_one_request_toward_the_limit(
    user, slugs, unqueued, limits
):
    compare_start(user=user, model_slugs=slugs, content="Three at once")
    assert Generation.objects.filter(status=Status.QUEUED).count() == 3
    assert running_count(user=user) == 1

    conversation_start(user=user, model=LanguageModelFactory(slug="alpha"), content="A chat")
    assert running_count(user=user) == 2

    with pytest.raises(LimitReached) as refused:
        compare_start(user=user, model_slugs=slugs[:2], content="One more")
    assert refused.value.code == "too_many_running"
    assert CompareSession.objects.count() == 1
    assert Generation.objects.count() == 4


def test_continue_with_this_one_makes_a_chat_with_that_columns_history(user, slugs, unqueued):
    session = compare_start(
        user=user, model_slugs=slugs, content="First", params={"temperature": 0.3, "seed": 9}
    )
    answer(replies_of(session, 0), ["a1", "b1", "c1"])
    compare_send(user=user, session_id=session.pk, content="Second")
    answer(replies_of(session, 1), ["a2", "b2", "c2"])
    beta = session.columns.get(index=1)

    conversation = compare_continue(user=user, session_id=session.pk, column_id=beta.pk)

    assert conversation.model.slug == "beta"
    assert conversation.params == {"temperature": 0.3, "seed": 9}
    messages = list(Message.objects.filter(conversation=conversation).order_by("created_at"))
    assert [(m.role, m.content) for m in messages] == [
        ("user", "First"),
        ("assistant", "b1"),
        ("user", "Second"),
        ("assistant", "b2"),
    ]
    assert [m.parent_id for m in messages[1:]] == [m.pk for m in messages[:-1]]
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == messages[-1].pk


def test_continue_waits_for_the_columns_reply_to_finish(user, slugs, unqueued):
    session = compare_start(user=user, model_slugs=slugs[:2], content="First")
    column = session.columns.first()
    with pytest.raises(Conflict):
        compare_continue(user=user, session_id=session.pk, column_id=column.pk)
    assert not Conversation.objects.exists()


# ---- pages ----------------------------------------------------------------


def test_the_compare_page_starts_a_session_and_opens_it(client, member, slugs, unqueued):
    page = client.get("/compare/")
    assert page.status_code == 200
    assert all(f'value="{slug}"' in page.content.decode() for slug in slugs)

    response = client.post(
        "/compare/new",
        {"model": slugs, "content": "Hello all", "temperature": "0.5", "seed": ""},
    )
    session = CompareSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/compare/{session.pk}/"
    opened = client.get(response["Location"]).content.decode()
    assert opened.count('class="compare-column"') == 3
    assert f"seed {session.params['seed']}" in opened


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"model": ["alpha"], "content": "Hi"}, "Choose 2 to 4 models"),
        ({"model": ["alpha", "beta"], "content": ""}, "Type a message first"),
        ({"model": ["alpha", "beta"], "content": "Hi", "temperature": "warm"}, "a number"),
        ({"model": ["alpha", "beta"], "content": "Hi", "seed": "1.5"}, "whole number"),
    ],
)
def test_a_bad_form_shows_the_error_and_saves_nothing(
    client, member, slugs, unqueued, form, message
):
    response = client.post("/compare/new", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert nothing_saved()


def test_the_page_refuses_a_model_the_user_may_not_use(client, member, slugs, unqueued):
    LanguageModelFactory(slug="secret", access_policy="private")
    response = client.post("/compare/new", {"model": ["alpha", "secret"], "content": "Hi"})
    assert response.status_code == 403
    assert nothing_saved()
    [attempt] = AuditEntry.objects.filter(outcome="refused")
    assert (attempt.action, attempt.target, attempt.subject_id) == (
        "chat.refused",
        "secret",
        member.pk,
    )


def test_the_next_turn_is_sent_as_json_and_names_each_columns_reply(
    client, member, slugs, unqueued
):
    session = compare_start(user=member, model_slugs=slugs, content="First")
    answer(replies_of(session, 0), ["a", "b", "c"])
    response = client.post(
        f"/compare/{session.pk}/send",
        json.dumps({"content": "Second"}),
        content_type="application/json",
    )
    assert response.status_code == 200
    turn = response.json()["turn"]
    assert turn["content"] == "Second"
    assert [r["model"]["slug"] for r in turn["replies"]] == slugs
    assert {r["status"] for r in turn["replies"]} == {"queued"}

    busy = client.post(
        f"/compare/{session.pk}/send", json.dumps({"content": "Third"}), "application/json"
    )
    assert (busy.status_code, busy.json()["code"]) == (409, "busy")


def test_someone_elses_session_is_a_404_on_every_page(client, member, slugs, unqueued):
    session = compare_start(user=UserFactory(), model_slugs=slugs[:2], content="Not yours")
    column = session.columns.first()
    assert client.get(f"/compare/{session.pk}/").status_code == 404
    send = client.post(f"/compare/{session.pk}/send", {"content": "x"})
    assert send.status_code == 404
    assert client.post(f"/compare/{session.pk}/columns/{column.pk}/continue").status_code == 404
    assert CompareTurn.objects.count() == 1


def test_every_post_needs_the_csrf_token(member, slugs, unqueued):
    session = compare_start(user=member, model_slugs=slugs[:2], content="First")
    column = session.columns.first()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    for url, data in (
        ("/compare/new", {"model": slugs[:2], "content": "Hi"}),
        (f"/compare/{session.pk}/send", {"content": "Hi"}),
        (f"/compare/{session.pk}/columns/{column.pk}/continue", {}),
    ):
        assert strict.post(url, data).status_code == 403, url
    assert CompareSession.objects.count() == 1
    assert CompareTurn.objects.count() == 1


def test_the_session_page_escapes_what_it_shows_and_names_a_closed_column(
    client, member, models, unqueued
):
    session = compare_start(
        user=member, model_slugs=["alpha", "beta"], content="<script>alert(1)</script>"
    )
    answer(replies_of(session, 0), ["<img src=x onerror=alert(2)>", "ok"])
    models[0].access_policy = "private"
    models[0].save()

    page = client.get(f"/compare/{session.pk}/").content.decode()

    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "You may no longer use Alpha" in page


def test_continue_from_the_page_opens_the_new_conversation(client, member, slugs, unqueued):
    session = compare_start(user=member, model_slugs=slugs[:2], content="First")
    answer(replies_of(session, 0), ["a", "b"])
    column = session.columns.get(index=1)
    response = client.post(f"/compare/{session.pk}/columns/{column.pk}/continue")
    conversation = Conversation.objects.get()
    assert response["Location"] == conversation.get_absolute_url()
    page = client.get(response["Location"]).content.decode()
    assert "First" in page and ">b<" in page.replace("\n", "")


def test_compare_sessions_are_listed_in_the_sidebar_beside_conversations(
    client, member, slugs, unqueued
):
    session = compare_start(user=member, model_slugs=slugs[:2], content="Side by side")
    other = compare_start(user=UserFactory(), model_slugs=slugs[:2], content="Someone else")
    page = client.get("/").content.decode()
    assert f'href="/compare/{session.pk}/"' in page
    assert "Side by side" in page
    assert str(other.pk) not in page


async def test_someone_elses_column_cannot_be_watched_or_stopped_over_the_socket(
    user, slugs, unqueued
):
    from channels.db import database_sync_to_async as sync_to_async

    from tests.ws import connect

    session = await sync_to_async(compare_start)(user=user, model_slugs=slugs[:2], content="Mine")
    column = await sync_to_async(lambda: str(replies_of(session, 0)[0].pk))()
    stranger = await connect(await sync_to_async(UserFactory)())
    await stranger.send({"type": "subscribe", "generation": column})
    assert (await stranger.receive())["code"] == "not_found"
    await stranger.send({"type": "stop", "generation": column})
    assert (await stranger.receive())["code"] == "not_found"
    assert (await Generation.objects.aget(pk=column)).status == Status.QUEUED
    await stranger.close()


def test_two_rows_of_the_same_models_in_opposite_orders_both_start(slugs, unqueued, monkeypatch):
    """Each generation locks its model's row until the commit; the rows take the locks
    in the same order whatever the columns' order, so neither waits on the other forever."""
    import threading

    from django.db import connection

    from inference.tasks import generate
    from webapp.generations import services as generation_services
    from webapp.generations.queue import queue_place as placed

    monkeypatch.setattr(generate, "apply_async_on_commit", lambda *a, **o: None)  # no worker
    barrier = threading.Barrier(2, timeout=1.0)
    local = threading.local()

    def place_then_meet(**kwargs):
        found = placed(**kwargs)
        if not getattr(local, "met", False):  # both rows hold their first lock here
            local.met = True
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return found

    monkeypatch.setattr(generation_services, "queue_place", place_then_meet)
    users = [UserFactory(), UserFactory()]
    errors: list[Exception] = []

    def start(user, order):
        try:
            compare_start(user=user, model_slugs=order, content="Race")
        except Exception as exc:  # the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=start, args=(users[0], slugs[:2])),
        threading.Thread(target=start, args=(users[1], slugs[1::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert CompareSession.objects.count() == 2


def test_a_column_whose_model_closed_before_a_worker_took_it_is_refused_alone(user, models, admit):
    from webapp.generations.services import GenerationRefused, generation_claim

    session = compare_start(user=user, model_slugs=["alpha", "beta"], content="Hi")
    alpha, beta = replies_of(session, 0)
    models[1].access_policy = "private"
    models[1].save()
    admit(models[0])
    admit(models[1])

    assert generation_claim(generation_id=str(alpha.pk)) is not None
    with pytest.raises(GenerationRefused) as refused:
        generation_claim(generation_id=str(beta.pk))
    assert refused.value.code == "forbidden"
    assert refused.value.group == session.group


def test_over_the_limit_a_turn_is_refused_with_429_and_saves_nothing(
    client, member, slugs, unqueued, settings
):
    settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, "CONCURRENT": 1}
    compare_start(user=member, model_slugs=slugs, content="Three count as one")
    response = client.post("/compare/new", {"model": slugs[:2], "content": "Another"})
    assert response.status_code == 429
    assert "replies running" in response.content.decode()
    assert CompareSession.objects.count() == 1
