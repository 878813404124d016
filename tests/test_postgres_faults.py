"""PostgreSQL restarted while a reply streams: the reply streams on (no connection is held
while streaming), is saved once the database is back, and new replies work within 10 s."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.drill import drill_runs, record
from tests.faults import FaultStack, Page, Postgres, fault_stack
from tests.inference_server import directive
from tests.services import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

TOKENS = 60
EXPECTED = "".join(f" tok{i}" for i in range(TOKENS))  # the scripted server's text

SETUP = """
import json
from django.test import Client
from tests.factories import (
    ConversationFactory, LanguageModelFactory, ModelEndpointFactory, UserFactory,
)
user = UserFactory()
model = LanguageModelFactory(slug="pg-fault", backend="openai")
ModelEndpointFactory(model=model, url={url!r})
conversations = [ConversationFactory(user=user, model=model) for _ in range(2)]
client = Client()
client.force_login(user)
print(json.dumps({{"conversations": [str(c.pk) for c in conversations],
                  "cookie": "sessionid=" + client.cookies["sessionid"].value}}))
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Postgres]:
    # Not under pytest's tmp folder: the server runs as postgres, which cannot enter it.
    base = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
    cluster = Postgres(base / "data", free_port()).init()
    cluster.start()
    yield cluster
    cluster.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def stack_on_cluster(cluster, scripted_server) -> Iterator[tuple[FaultStack, dict, str]]:
    database_url = f"{cluster.url}/gatehouse"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": database_url,
    }
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "gatehouse"],
        check=True,
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    made = subprocess.run(
        [*manage, "shell", "-c", SETUP.format(url=scripted_server.url)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    setup = json.loads(made.stdout.strip().splitlines()[-1])
    stack = fault_stack("pg-fault", env=env)
    yield stack, setup, database_url
    stack.stop()


def saved(database_url: str, generation: str) -> tuple[str, str]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT status, text FROM generations_generation WHERE id = %s", [generation]
        ).fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize("run", range(drill_runs(1)))
async def test_postgres_restarted_mid_stream(cluster, stack_on_cluster, inference, run):
    stack, setup, database_url = stack_on_cluster
    streaming, other = setup["conversations"]
    async with (
        Page(stack, setup["cookie"], streaming) as page,
        Page(stack, setup["cookie"], other) as second,
    ):
        reply = await page.send("Long " + directive(n_tokens=TOKENS, rate=30))  # 2 s
        await page.until_text(reply, 10)
        cluster.stop("immediate")  # a crash: every connection dies at once
        down = time.monotonic()
        shown = page.watched(reply).text
        # It streams on to its end meanwhile; its save then waits for the database.
        await page.until_text(reply, len(EXPECTED), timeout=5)
        refused = asyncio.create_task(
            second.send("While down " + directive(n_tokens=3, rate=100), timeout=30)
        )
        await asyncio.sleep(max(0.0, 3.5 - (time.monotonic() - down)))
        assert page.watched(reply).done is None  # not saved, so not ended yet
        cluster.start()
        back = time.monotonic()

        while_down = await refused  # the page's resend went through once it was back
        worked = (await second.until_done(while_down, timeout=10)).done["status"] == "done"
        recovery = time.monotonic() - back
        watched = await page.until_done(reply, timeout=20)
        status, text = saved(database_url, reply)
        record(
            "PostgreSQL crashed and restarted",
            shown=shown,
            saved=text,
            ended=status == "done",
            recovery_s=recovery,
        )

        assert watched.done["status"] == "done"
        assert (status, text) == ("done", watched.text)
        assert worked and recovery <= 10
