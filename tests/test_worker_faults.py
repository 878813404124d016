"""Workers that die or are told to stop: their replies end with their text, reaped by beat
even while no worker runs; a stopping worker lets running replies finish first."""

from __future__ import annotations

import asyncio
import os
import signal
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

GRACE = 2.0  # GENERATION_SHUTDOWN_GRACE of this stack's worker


@pytest.fixture(scope="module")
def stack(django_db_setup: None) -> Iterator[FaultStack]:
    stack = fault_stack(
        "worker-fault",
        beat=True,
        settings={"REAPER_INTERVAL": "0.5", "GENERATION_SHUTDOWN_GRACE": str(GRACE)},
    )
    yield stack
    stack.stop()


@pytest.fixture
async def page(stack, inference, user, openai_model):
    if not stack.worker.running:
        stack.worker.start()
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    cookie = await sync(session_cookie)(user)
    async with Page(stack, cookie, str(conversation.pk)) as page:
        yield page


@pytest.mark.parametrize("run", range(drill_runs(1)))
async def test_a_killed_worker_is_reaped_by_beat_while_no_worker_runs(stack, page, run):
    reply = await page.send("Long " + directive(n_tokens=400, rate=20))
    await page.until_text(reply, 12)
    stack.worker.kill()
    killed = time.monotonic()
    shown = page.watched(reply).text

    watched = await page.until_done(reply, timeout=45)
    reaped = time.monotonic() - killed
    saved = await Generation.objects.aget(pk=reply)
    record(
        "worker SIGKILL, reaped by beat",
        shown=shown,
        saved=saved.text,
        ended=saved.status == Status.INTERRUPTED,
        recovery_s=reaped,
    )
    assert reaped < 45
    assert watched.done["status"] == "interrupted"
    assert (saved.status, saved.error_code) == (Status.INTERRUPTED, "interrupted")
    assert len(saved.text) >= 12 and saved.text == watched.text
    assert not stack.worker.running  # nobody but beat did it

    stack.worker.start()
    again = await page.send("Again " + directive(n_tokens=3, rate=100))
    assert (await page.until_done(again, timeout=10)).done["status"] == "done"


@pytest.mark.parametrize("run", range(drill_runs(1)))
async def test_a_worker_told_to_stop_finishes_what_it_can_then_interrupts_the_rest(
    stack, page, run
):
    short = await page.send("Short " + directive(n_tokens=10, rate=10))  # 1 s
    long = await page.send("Long " + directive(n_tokens=400, rate=20))  # 20 s
    await page.until_text(long, 6)
    os.killpg(stack.worker.process.pid, signal.SIGTERM)
    told = time.monotonic()
    await asyncio.sleep(0.5)
    later = await page.send("Later " + directive(n_tokens=3, rate=100))

    assert (await page.until_done(short, timeout=5)).done["status"] == "done"
    shown = page.watched(long).text
    cut = await page.until_done(long, timeout=GRACE + 5)
    ended_after = time.monotonic() - told
    saved = await Generation.objects.aget(pk=long)
    record(
        "worker SIGTERM, grace then interrupted",
        shown=shown,
        saved=saved.text,
        ended=saved.status == Status.INTERRUPTED,
        recovery_s=ended_after,
    )
    assert ended_after >= GRACE
    assert cut.done["status"] == "interrupted"
    assert (saved.status, saved.error_code) == (Status.INTERRUPTED, "interrupted")
    assert "restarted" in saved.error_detail
    assert saved.text == cut.text and len(saved.text) >= 6
    stack.worker.process.wait(GRACE + 10)
    assert time.monotonic() - told < GRACE + 10
    # Sent while it was stopping: left on the queue for the next worker.
    assert (await Generation.objects.aget(pk=later)).status == Status.QUEUED

    stack.worker.start()
    assert (await page.until_done(later, timeout=10)).done["status"] == "done"
