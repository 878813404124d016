"""An early start: the worker sends a placed generation's request while its claim runs (the
task message says what to send), and no token of it goes out before the claim says yes.

The claim is held back here by a row lock taken in another connection, so what happens
before it returns can be seen; the task runs in this process, as the worker runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django import db
from django.conf import settings
from django.db import connection

from inference.relay import log_text
from inference.tasks import generate
from tests.factories import ConversationFactory
from tests.inference_server import directive
from webapp.accounts.models import User
from webapp.chat.services import message_send
from webapp.generations.models import Generation, Status
from webapp.generations.services import generation_start

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SLOW = directive(n_tokens=40, rate=20)  # 2 s: still streaming when the claim answers


def _placed(user: Any, model: Any, admit: Callable[[Any], list[str]], text: str) -> tuple:
    """A sent reply, admitted to its endpoint, and the start its task message carries."""
    conversation = ConversationFactory(user=user, model=model)
    sent = message_send(user=user, conversation_id=conversation.pk, content=text)
    generation_id = str(sent.assistant_message.generation_id)
    assert generation_id in admit(model)
    saved = Generation.objects.select_related("language_model").get(pk=generation_id)
    return generation_id, generation_start(saved)


@contextmanager
def _claim_held(generation_id: str) -> Iterator[None]:
    params = connection.get_connection_params()
    keys = {"dbname", "user", "password", "host", "port"}
    with psycopg.connect(**{k: v for k, v in params.items() if k in keys}) as other:
        other.execute(
            "SELECT 1 FROM generations_generation WHERE id = %s FOR UPDATE", [generation_id]
        )
        yield
        other.rollback()


def _until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def _request(inference: Any, number: int) -> Callable[[], dict[str, Any] | None]:
    def seen() -> dict[str, Any] | None:
        found = inference.requests(kind="generation")
        return found[number - 1] if len(found) >= number else None

    return seen


def _worker(generation_id: str, start: dict[str, Any]) -> threading.Thread:
    """Run the task in a thread of its own, as a worker's pool does, closing its connection."""

    def run() -> None:
        try:
            generate(generation_id, start)
        finally:
            db.connection.close()

    return threading.Thread(target=run)


@pytest.fixture
def served_once(user, openai_model, inference, admit) -> None:
    """This process has claimed a generation on the model's endpoint: it knows the endpoint."""
    generate(*_placed(user, openai_model, admit, "First " + directive(n_tokens=2, rate=0)))
    assert len(inference.requests(kind="generation")) == 1


def test_the_request_goes_out_before_the_claim_and_its_text_only_after(
    user, openai_model, inference, admit, served_once
):
    generation_id, start = _placed(user, openai_model, admit, "Go " + directive(n_tokens=5))
    worker = _worker(generation_id, start)
    with _claim_held(generation_id):
        worker.start()
        # The server answers in full while the claim waits; none of it is on the page.
        _until(lambda: (_request(inference, 2)() or {}).get("completed"))
        # A claim slower than the stream's idle limit: waiting for it is not the backend's
        # silence, so the reply does not end as timed out.
        time.sleep(settings.GENERATION["IDLE_TIMEOUT"] + 0.5)
        assert log_text(generation_id) == ("", 0)
    worker.join(10)
    saved = Generation.objects.get(pk=generation_id)
    assert saved.status == Status.DONE
    assert log_text(generation_id)[0] == saved.text != ""  # every token, once
    assert len(inference.requests(kind="generation")) == 2  # and the request was sent once


def test_a_claim_refused_after_the_request_went_out_shows_no_token_and_ends_the_request(
    user, openai_model, inference, admit, served_once
):
    generation_id, start = _placed(user, openai_model, admit, "Go " + SLOW)
    User.objects.filter(pk=user.pk).update(is_active=False)  # gone before the claim
    worker = _worker(generation_id, start)
    with _claim_held(generation_id):
        worker.start()
        _until(_request(inference, 2))
    worker.join(10)
    saved = Generation.objects.get(pk=generation_id)
    assert (saved.status, saved.error_code) == (Status.FAILED, "forbidden")
    assert log_text(generation_id) == ("", 0)
    assert _until(lambda: _request(inference, 2)()["disconnected"])  # the GPU stops too


def test_an_endpoint_edited_since_this_process_knew_it_is_asked_again_as_claimed(
    user, openai_model, inference, admit, served_once
):
    generation_id, start = _placed(user, openai_model, admit, "Go " + SLOW)
    openai_model.backend_model = "renamed-model"
    openai_model.save()
    generate(generation_id, start)
    early, claimed = inference.requests(kind="generation")[1:]
    assert early["body"]["model"] == "scripted/openai-model"  # what this process knew
    assert claimed["body"]["model"] == "renamed-model"  # what the claim read
    saved = Generation.objects.get(pk=generation_id)
    assert saved.status == Status.DONE
    assert log_text(generation_id)[0] == saved.text != ""
