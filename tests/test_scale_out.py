"""Two web processes and two workers on one Redis and one PostgreSQL: a reply started
from a tab on one web process streams to a tab on the other, and stops from either."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async as sync

from tests.factories import ConversationFactory
from tests.faults import FaultStack, Page, fault_stack, session_cookie
from tests.inference_server import directive
from tests.services import Service, asgi_server, celery_worker, free_port
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def two_of_each(django_db_setup: None) -> Iterator[tuple[FaultStack, Service, Service]]:
    stack = fault_stack("scale-1")
    port = free_port()
    web = asgi_server(port, env=stack.web.env, name="scale-2-web")
    worker = celery_worker()
    worker.name, worker.env = "scale-2-worker", stack.worker.env
    worker.log = worker.log.with_name("scale-2-worker.log")
    worker.command = [*worker.command, "-n", "second@%h"]
    try:
        web.start()
        worker.start()
        yield stack, web, worker
    finally:
        for service in (web, worker):
            service.stop()
        stack.stop()


async def test_a_reply_streams_to_a_tab_on_the_other_web_process_and_stops_from_it(
    two_of_each, inference, user, openai_model
):
    stack, second_web, second_worker = two_of_each
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    cookie = await sync(session_cookie)(user)
    other = f"http://127.0.0.1:{second_web.command[second_web.command.index('--port') + 1]}"
    async with (
        Page(stack, cookie, str(conversation.pk)) as here,
        Page(stack, cookie, str(conversation.pk), web_url=other) as there,
    ):
        replies = []
        for turn in range(6):
            reply = await here.send(f"Turn {turn} " + directive(n_tokens=20, rate=200))
            done = await there.until_done(reply, timeout=10)  # seen on the other process
            assert done.done["status"] == "done"
            assert done.text == (await here.until_done(reply, timeout=5)).text
            replies.append(reply)
        saved = [await Generation.objects.aget(pk=r) for r in replies]
        assert all(g.status == Status.DONE and g.text for g in saved)

        long = await here.send("Long " + directive(n_tokens=400, rate=20))
        await there.until_text(long, 6)
        await there.stop(long)  # from the other web process
        assert (await here.until_done(long, timeout=5)).done["status"] == "stopped"
        assert inference.wait_for_disconnect(timeout=3)

    # Both workers took generations off the one queue.
    assert "ended done" in stack.worker.output() and "ended done" in second_worker.output()
