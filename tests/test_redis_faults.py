"""Redis killed and started again, empty, while replies stream: nothing wedges, nothing
the user saw is lost, and new replies work within seconds with no process restarted."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async as sync

from tests.drill import drill_runs, record
from tests.factories import ConversationFactory
from tests.faults import FaultStack, Page, fault_stack, session_cookie
from tests.inference_server import directive
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.fault, pytest.mark.django_db(transaction=True)]

RESTARTS = drill_runs(20)


@pytest.fixture(scope="module")
def stack(django_db_setup: None) -> Iterator[FaultStack]:
    # With beat's reaper every half second: it must leave the live reply alone across
    # every restart, though Redis comes back without its heartbeat.
    stack = fault_stack("redis-fault", beat=True, settings={"REAPER_INTERVAL": "0.5"})
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
            check = await page.send(f"After {attempt} " + directive(n_tokens=3, rate=100))
            done = await page.until_done(check, timeout=max(0.1, 10 - (time.monotonic() - back)))
            recovery = time.monotonic() - back
            ended = saved.status in (Status.DONE, Status.INTERRUPTED)
            record(
                "Redis restarted empty mid-stream",
                shown=shown,
                saved=saved.text,
                ended=ended,
                recovery_s=recovery,
            )

            assert ended, (attempt, saved.status)
            assert saved.text.startswith(shown), (attempt, shown, saved.text)
            assert watched.text == saved.text, attempt  # the page resynced to the saved text
            assert done.done is not None and done.done["status"] == "done", attempt
            assert recovery <= 10, attempt
    assert stack.worker.running and stack.web.running
    assert "exception was never retrieved" not in stack.worker.output()


async def test_a_reply_queued_when_redis_lost_its_queue_is_queued_again(
    stack, inference, user, openai_model
):
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    cookie = await sync(session_cookie)(user)
    async with Page(stack, cookie, str(conversation.pk)) as page:
        stack.worker.stop()  # nobody takes it off the queue
        waiting = await page.send("Waiting " + directive(n_tokens=3, rate=100))
        stack.redis.kill()
        stack.redis.start()  # empty: the task is gone
        stack.worker.start()
        done = await page.until_done(waiting, timeout=15)
        assert done.done["status"] == "done"
        assert (await Generation.objects.aget(pk=waiting)).status == Status.DONE
