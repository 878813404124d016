"""Fixtures on real services: PostgreSQL (pytest-django), Redis, a Celery worker process,
and the scripted inference server on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from tests.inference_server.harness import ScriptedServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _clean_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def inference(scripted_server: ScriptedServer) -> ScriptedServer:
    scripted_server.reset()
    return scripted_server


class Worker:
    """A real Celery worker process (thread pool) on the test database and Redis."""

    def __init__(self, database_name: str) -> None:
        self.database_name = database_name
        self.process: subprocess.Popen[bytes] | None = None
        self.log = ROOT / "var" / "test-worker.log"

    def start(self) -> None:
        db = settings.DATABASES["default"]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{self.database_name}",
        }
        self.log.parent.mkdir(exist_ok=True)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webapp",
                "worker",
                "-P",
                "threads",
                "-c",
                "16",
                "-Q",
                settings.CELERY_TASK_DEFAULT_QUEUE,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited; see {self.log}")
            if b"ready." in self.log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Celery worker did not start; see {self.log}")

    def kill(self) -> None:
        """Kill the worker abruptly, as an out-of-memory kill or a lost machine would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None, django_db_blocker) -> Iterator[Worker]:
    worker = Worker(settings.DATABASES["default"]["NAME"])
    if worker.log.exists():
        worker.log.unlink()
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker_process: Worker) -> Worker:
    if celery_worker_process.process.poll() is not None:  # a test killed it
        celery_worker_process.start()
    return celery_worker_process


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
