"""Compare rows on a real worker and real inference servers: the columns stream at the same
time, one slow or failing model never holds up the others, and stopping one column or all
of them reaches the servers."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tests.factories import LanguageModelFactory, ModelEndpointFactory
from tests.inference_server.harness import ScriptedServer
from tests.test_chat_stream import wait_for_final
from tests.ws import chunk_text, connect, seqs
from webapp.arena.compare.models import CompareTurn
from webapp.arena.compare.services import compare_send, compare_start
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUICK = [f" q{i}" for i in range(12)]


@pytest.fixture(scope="module")
def slow_server():
    """A second inference server, for the model that is slow (or hangs)."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def slow(slow_server):
    slow_server.reset()
    return slow_server


@pytest.fixture
def three(db, inference, slow):
    """Three models: a quick one and a failing one on the shared server, a slow one on its own."""
    quick = LanguageModelFactory(slug="quick", backend="openai")
    ModelEndpointFactory(model=quick, url=inference.url)
    lagging = LanguageModelFactory(slug="lagging", backend="tgi")
    ModelEndpointFactory(model=lagging, url=slow.url)
    broken = LanguageModelFactory(slug="broken", backend="openai")
    ModelEndpointFactory(model=broken, url="http://127.0.0.1:9/")  # nothing listens there
    return quick, lagging, broken


async def replies(session_id, index: int = 0) -> list[str]:
    def read():
        turn = CompareTurn.objects.get(session_id=session_id, index=index)
        return [str(r.generation_id) for r in turn.replies.order_by("column__index")]

    return await sync_to_async(read)()


async def watch(user, generation_ids):
    socket = await connect(user)
    for generation_id in generation_ids:
        await socket.send({"type": "subscribe", "generation": generation_id, "after_seq": 0})
    return socket


def of(frames, generation_id):
    return [f for f in frames if f.get("generation") == generation_id]


async def test_a_slow_and_a_failing_column_never_hold_up_the_quick_one(
    worker, inference, slow, user, three
):
    inference.set_default({"tokens": QUICK, "rate": 100})
    slow.set_default({"n_tokens": 400, "rate": 5})  # 80 s to the end
    session = await sync_to_async(compare_start)(
        user=user,
        model_slugs=["quick", "lagging", "broken"],
        content="Race",
        params={"seed": 5, "max_new_tokens": 500},
    )
    quick, lagging, broken = await replies(session.pk)
    socket = await watch(user, [quick, lagging, broken])

    frames = await socket.receive_until("done", generation=quick, timeout=15)
    while not any(f["type"] == "done" for f in of(frames, broken)):
        frames.append(await socket.receive(timeout=15))

    assert chunk_text(of(frames, quick)) == "".join(QUICK)
    assert seqs(of(frames, quick)) == list(range(1, len(seqs(of(frames, quick))) + 1))
    failed = next(f for f in of(frames, broken) if f["type"] == "done")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "backend_unavailable"
    assert (await wait_for_final(quick)).status == Status.DONE
    assert (await wait_for_final(broken)).status == Status.FAILED
    assert (await Generation.objects.aget(pk=lagging)).status == Status.STREAMING
    assert not any(f["type"] == "done" for f in of(frames, lagging))
    # The same seed reached both servers.
    seeds = {
        r["body"].get("seed") or r["body"].get("parameters", {}).get("seed")
        for r in inference.generations() + slow.generations()
    }
    assert seeds == {5}

    # Stopping the slow column alone reaches its server and keeps the others as they were.
    await socket.send({"type": "stop", "generation": lagging})
    ended = await socket.receive_until("done", generation=lagging, timeout=10)
    assert ended[-1]["status"] == "stopped"
    await asyncio.to_thread(slow.wait_for_disconnect, timeout=10)
    assert (await wait_for_final(lagging, timeout=10)).status == Status.STOPPED
    assert (await Generation.objects.aget(pk=quick)).status == Status.DONE
    await socket.close()


async def test_stop_all_stops_every_column_on_its_server(worker, inference, slow, user, three):
    inference.set_default({"n_tokens": 2000, "rate": 20})
    slow.set_default({"n_tokens": 2000, "rate": 20})
    session = await sync_to_async(compare_start)(
        user=user,
        model_slugs=["quick", "lagging"],
        content="Hang on",
        params={"max_new_tokens": 1500},
    )
    ids = await replies(session.pk)
    socket = await watch(user, ids)
    started = await socket.receive_chunks(6, timeout=10)
    while {f["generation"] for f in started} != set(ids):
        started += await socket.receive_chunks(1, timeout=10)

    for generation_id in ids:  # what the page's "Stop all" sends
        await socket.send({"type": "stop", "generation": generation_id})

    frames = await socket.receive_until("done", generation=ids[0], timeout=10)
    if not any(f["type"] == "done" for f in of(frames, ids[1])):
        frames += await socket.receive_until("done", generation=ids[1], timeout=10)
    assert {f["status"] for f in frames if f["type"] == "done"} == {"stopped"}
    # Not in the one sync thread: the socket's own database work runs there.
    await asyncio.to_thread(inference.wait_for_disconnect, timeout=10)
    await asyncio.to_thread(slow.wait_for_disconnect, timeout=10)
    for generation_id in ids:
        assert (await wait_for_final(generation_id, timeout=10)).status == Status.STOPPED
    await socket.close()


async def test_a_second_turn_streams_in_every_column_from_its_own_history(
    worker, inference, slow, user, three
):
    inference.set_default({"tokens": [" one"], "rate": 0})
    slow.set_default({"tokens": [" two"], "rate": 0, "eos_token": ""})
    session = await sync_to_async(compare_start)(
        user=user, model_slugs=["quick", "lagging"], content="First"
    )
    for generation_id in await replies(session.pk):
        assert (await wait_for_final(generation_id, timeout=10)).status == Status.DONE

    await sync_to_async(compare_send)(user=user, session_id=session.pk, content="Second")
    quick, lagging = await replies(session.pk, 1)
    socket = await watch(user, [quick, lagging])
    frames = await socket.receive_until("done", generation=quick, timeout=15)
    if not any(f["type"] == "done" for f in of(frames, lagging)):
        frames += await socket.receive_until("done", generation=lagging, timeout=15)
    assert chunk_text(of(frames, quick)).strip() == "one"
    assert chunk_text(of(frames, lagging)).strip() == "two"
    last_quick = inference.generations()[-1]["body"]["messages"]
    assert [m["content"] for m in last_quick] == ["First", " one", "Second"]
    await socket.close()
