"""Redis killed and started again, empty, while replies stream: nothing wedges, nothing
the user saw is lost, and new replies work within seconds with no process restarted."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async as sync

from tests.factories import ConversationFactory
from tests.faults import FaultStack, Page, fault_stack, session_cookie
from tests.inference_server import directive
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

RESTARTS = 20


@pytest.fixture(scope="module")
def stack(django_db_setup: None) -> Iterator[FaultStack]:
    stack = fault_stack("redis-fault")
    yield stack
    stack.stop()


async def test_redis_restarted_empty_mid_stream_twenty_times(stack, inference, user, openai_model):
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    cookie = await sync(session_cookie)(user)
    rng = random.Random(7)
    async with Page(stack, cookie, str(conversation.pk)) as page:
        for attempt in range(RESTARTS):
            reply = await page.send(f"Round {attempt} " + directive(n_tokens=60, rate=40))
            await page.until_text(reply, 5)
            stack.redis.kill()
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            shown = page.watched(reply).text
            stack.redis.start()
            back = time.monotonic()

            watched = await page.until_done(reply, timeout=20)
            saved = await Generation.objects.aget(pk=reply)
            assert saved.status in (Status.DONE, Status.INTERRUPTED), (attempt, saved.status)
            assert saved.text.startswith(shown), (attempt, shown, saved.text)
            assert watched.text == saved.text, attempt  # the page resynced to the saved text

            check = await page.send(f"After {attempt} " + directive(n_tokens=3, rate=100))
            done = await page.until_done(check, timeout=max(0.1, 10 - (time.monotonic() - back)))
            assert done.done is not None and done.done["status"] == "done", attempt
            assert time.monotonic() - back <= 10, attempt
    assert stack.worker.running and stack.web.running
    assert "exception was never retrieved" not in stack.worker.output()
