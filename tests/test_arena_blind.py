"""A whole battle on the real path (HTTP writes, a Celery worker, the scripted inference
server, the websocket): until the vote, no page, frame or JSON response names either
model, its slug, the backend's model id or its maker, and no frame carries stats."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.test import Client

from inference import relay
from tests.arena import arena_model
from tests.inference_server.tgi import MODEL_ID as TGI_MODEL_ID
from tests.ws import chunk_text, connect
from webapp.generations.models import Generation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FIRST = [" The", " tide", " comes", " in", " slowly", " over", " the", " flats", "."] * 3
SECOND = [" Seven", " boats", " wait", " by", " the", " pier", " tonight", "."] * 3
OPENAI_BACKEND_ID = "acme/falcon-mini-backend"


@pytest.fixture
def pair(db, inference, settings):
    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 0
    falcon = arena_model(
        "falcon-mini",
        display_name="Falcon Mini",
        url=inference.url,
        words="Falconworks",
        backend="openai",
        backend_model=OPENAI_BACKEND_ID,
    )
    kestrel = arena_model(
        "kestrel-large",
        display_name="Kestrel Large",
        url=inference.url,
        words="Kestrel Labs",
        backend="tgi",
    )
    return falcon, kestrel


def secrets_of(pair) -> list[str]:
    words = [OPENAI_BACKEND_ID, TGI_MODEL_ID]
    for model in pair:
        words += [model.slug, model.display_name, *model.arena_entry.give_away_words.split()]
    return words


class Browser:
    """A signed-in page's HTTP side; it keeps every body it received."""

    def __init__(self, user) -> None:
        self.client = Client()
        self.client.force_login(user)
        self.bodies: list[str] = []

    async def get(self, url: str):
        response = await sync_to_async(self.client.get)(url)
        self.bodies.append(response.content.decode())
        return response

    async def post(self, url: str, data: dict):
        response = await sync_to_async(self.client.post)(url, data)
        self.bodies.append(response.content.decode())
        return response


async def tokens_used(page: Browser, pair) -> list[int]:
    limits = (await sync_to_async(page.client.get)("/accounts/limits.json")).json()
    models = limits["tokens_today"]["models"]
    return [models[model.slug]["used"] for model in pair]


async def stream_turn(socket, turn: dict) -> list[dict]:
    """Subscribe to both sides of ``turn`` and return every frame up to both ends."""
    sides = {turn["a"]["generation"], turn["b"]["generation"]}
    for generation_id in sides:
        await socket.send({"type": "subscribe", "generation": generation_id, "after_seq": 0})
    frames, ended = [], set()
    while ended != sides:
        frame = await socket.receive(timeout=10)
        frames.append(frame)
        if frame["type"] == "done":
            ended.add(frame["generation"])
    return frames


async def test_no_name_stat_or_backend_id_leaves_the_server_before_the_vote(
    worker, inference, user, pair
):
    page = await sync_to_async(Browser)(user)
    socket = await connect(user)
    inference.push({"tokens": FIRST, "rate": 40}, {"tokens": SECOND, "rate": 40})
    assert (await page.get("/arena/")).status_code == 200
    started = await page.post("/arena/battles/", {"content": "Describe the sea."})
    assert started.status_code == 201
    battle_id, first = started.json()["battle"], started.json()["turn"]

    frames = await stream_turn(socket, first)
    # Both sides streamed at the same time: each had chunks before the other ended.
    ends = [i for i, f in enumerate(frames) if f["type"] == "done"]
    for side in ("a", "b"):
        chunks = [
            i
            for i, f in enumerate(frames)
            if f.get("generation") == first[side]["generation"] and f["type"] == "chunk"
        ]
        assert chunks and chunks[0] < ends[0]
    texts = {
        chunk_text([f for f in frames if f.get("generation") == first[s]["generation"]])
        for s in "ab"
    }
    assert texts == {"".join(FIRST), "".join(SECOND)}

    await page.get(f"/arena/{battle_id}/")
    inference.push({"tokens": SECOND, "rate": 40}, {"tokens": FIRST, "rate": 40})
    sent = await page.post(f"/arena/{battle_id}/turns/", {"content": "And the harbour?"})
    assert sent.status_code == 201
    second = sent.json()["turn"]
    frames += await stream_turn(socket, second)

    # A page that comes back later replays both logs; one whose log expired reads the saved
    # generation; the details view refuses.
    late = await connect(user)
    for turn in (first, second):
        frames += await stream_turn(late, turn)
    await relay.async_client().delete(f"gatehouse:gen:{first['a']['generation']}:log")
    await late.send({"type": "subscribe", "generation": first["a"]["generation"]})
    saved = await late.receive_until("generation")
    frames += saved
    assert saved[-1]["generation"]["blind"] is True
    for turn in (first, second):
        for side in "ab":
            details = await page.get(f"/generations/{turn[side]['generation']}/")
            assert details.status_code == 403
    await page.get(f"/arena/{battle_id}/")
    await page.get("/arena/")

    wire = [json.dumps(frame) for frame in frames + socket.frames] + page.bodies
    everything = "\n".join(wire).lower()
    for secret in secrets_of(pair):
        assert secret.lower() not in everything, secret
    done = [f for f in frames + socket.frames if f["type"] == "done"]
    assert len(done) >= 8 and all("stats" not in f for f in done)
    for stat in ("tokens_per_second", "time_to_first_token", "generated_tokens", "model_id"):
        assert stat not in everything, stat

    # The limits page lists every model open to the user; its token counts would say which
    # two models this battle used, so a blind side's tokens count from the vote on.
    assert await tokens_used(page, pair) == [0, 0]

    # The stats were kept all along; the vote reveals the names.
    saved_side = await Generation.objects.aget(pk=first["a"]["generation"])
    assert saved_side.backend_model_id and saved_side.generated_tokens
    voted = await page.post(f"/arena/{battle_id}/vote/", {"winner": "model_b"})
    assert voted.status_code == 200
    reveal = voted.json()["reveal"]
    assert {reveal["a"]["name"], reveal["b"]["name"]} == {"Falcon Mini", "Kestrel Large"}
    assert reveal["counted"] is True
    details = await page.get(f"/generations/{first['a']['generation']}/")
    assert details.json()["backend_model_id"] in (OPENAI_BACKEND_ID, TGI_MODEL_ID)
    assert all(used > 0 for used in await tokens_used(page, pair))
    await socket.close()
    await late.close()


async def test_a_side_that_fails_says_so_without_the_servers_words(worker, inference, user, pair):
    page = await sync_to_async(Browser)(user)
    socket = await connect(user)
    leak = f"{OPENAI_BACKEND_ID} ran out of memory on {TGI_MODEL_ID}"
    inference.push({"status": 500, "error": leak}, {"status": 500, "error": leak})
    started = await page.post("/arena/battles/", {"content": "Fail, please."})
    battle_id, turn = started.json()["battle"], started.json()["turn"]
    frames = await stream_turn(socket, turn)
    await page.get(f"/arena/{battle_id}/")

    done = [f for f in frames if f["type"] == "done"]
    assert [f["status"] for f in done] == ["failed", "failed"]
    assert all(f["error"]["detail"] == "This model could not answer." for f in done)
    everything = "\n".join([json.dumps(f) for f in frames] + page.bodies).lower()
    for secret in [*secrets_of(pair), "out of memory"]:
        assert secret.lower() not in everything, secret
    saved = await Generation.objects.aget(pk=turn["a"]["generation"])
    assert "out of memory" in saved.error_detail  # kept for staff, shown to nobody else
    refused = await page.post(f"/arena/{battle_id}/vote/", {"winner": "tie"})
    assert refused.json()["error"]["code"] == "no_reply"
    await socket.close()
