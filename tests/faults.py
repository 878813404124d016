"""A stack of real processes on a Redis of its own, to kill and restart, and a client
that watches generations the way the page does (reconnect, resubscribe, fill gaps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import websockets
from django.test import Client

from tests.services import Service, asgi_server, celery_worker, free_port, test_database_env

FINAL = {"done", "stopped", "failed", "interrupted"}


def redis_server(port: int) -> Service:
    """A Redis that keeps nothing on disk: restarted, it comes back empty."""
    return Service(
        f"redis-{port}",
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        ready=lambda _: _pings(port),
        timeout=20,
    )


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@dataclass
class FaultStack:
    """Redis, a Celery worker, beat and uvicorn, all on a Redis that the test may kill."""

    redis: Service
    worker: Service
    web: Service
    beat: Service | None
    redis_url: str
    web_url: str

    def stop(self) -> None:
        for service in (self.web, self.beat, self.worker, self.redis):
            if service is not None:
                service.stop()


def fault_stack(
    name: str,
    *,
    settings: dict[str, str] | None = None,
    beat: bool = False,
    env: dict[str, str] | None = None,
) -> FaultStack:
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **(env or test_database_env()),
        "TEST_REDIS_URL": redis_url,
        # One user sends every reply of a drill: the per-user limits are not under test here.
        "GENERATION_LIMIT_CONCURRENT": "1000",
        "GENERATION_LIMIT_PER_MINUTE": "1000",
        "GENERATION_LIMIT_TOKENS_PER_DAY": "0",
        "GENERATION_LIMIT_SOCKETS": "1000",
        **(settings or {}),
    }
    own_redis = redis_server(redis_port).start()
    worker = celery_worker()
    worker.name, worker.env = f"{name}-worker", env
    worker.log = worker.log.with_name(f"{name}-worker.log")
    scheduler = None
    if beat:
        schedule = worker.log.with_name(f"{name}-celerybeat-schedule")
        scheduler = Service(
            f"{name}-beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webapp",
                "beat",
                "-s",
                str(schedule),
                "--loglevel",
                "INFO",
            ],
            env=env,
            ready=lambda service: "beat: Starting" in service.recent(),
        )
    web = asgi_server(web_port, env=env, name=f"{name}-web")
    stack = FaultStack(own_redis, worker, web, scheduler, redis_url, f"http://127.0.0.1:{web_port}")
    try:
        worker.start()
        web.start()
        if scheduler is not None:
            scheduler.start()
    except Exception:
        stack.stop()
        raise
    return stack


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def signed_in_context(browser: Any, user: Any, site_url: str) -> Any:
    """A new browser context with ``user``'s session for ``site_url``."""
    context = browser.new_context()
    name, value = session_cookie(user).split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": site_url}])
    return context


@dataclass
class Watched:
    """One generation as the page shows it: its chunks in seq order, then its end."""

    pieces: list[str] = field(default_factory=list)
    done: dict[str, Any] | None = None

    @property
    def seq(self) -> int:
        return len(self.pieces)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class Page:
    """A chat page on one conversation: a socket that reconnects and resyncs on its own.

    Like static/js/streams.js: chunks are taken in seq order, a duplicate is
    dropped, a gap or a reconnect sends ``subscribe`` with every position.
    """

    def __init__(
        self, stack: FaultStack, cookie: str, conversation: str, *, web_url: str | None = None
    ) -> None:
        web_url = web_url or stack.web_url
        self.url = web_url.replace("http", "ws", 1) + "/ws/chat/"
        self.origin, self.cookie, self.conversation = web_url, cookie, conversation
        self.generations: dict[str, Watched] = {}
        self.replies: dict[str, str] = {}  # client_id → generation id of the reply
        self._sent: dict[str, str] = {}  # user message id → its client_id
        self.errors: list[dict[str, Any]] = []
        self.closes = 0
        self._socket: Any = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Page:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._socket is not None:
            await self._socket.close()

    async def send(self, content: str, timeout: float = 15.0) -> str:
        """Send a message (resending it, as the page does, until it is taken); return the
        generation id of its reply."""
        client_id = str(uuid.uuid4())
        frame = {
            "type": "send",
            "conversation": self.conversation,
            "content": content,
            "client_id": client_id,
        }
        deadline = time.monotonic() + timeout
        while client_id not in self.replies:
            if time.monotonic() > deadline:
                raise AssertionError(f"the send was never taken; errors: {self.errors[-5:]}")
            with contextlib.suppress(Exception):
                await self._socket.send(json.dumps(frame))
            await self._wait(1.0, lambda: client_id in self.replies)
        return self.replies[client_id]

    async def stop(self, generation: str) -> None:
        await self._socket.send(json.dumps({"type": "stop", "generation": generation}))

    async def until_done(self, generation: str, timeout: float) -> Watched:
        await self._wait(timeout, lambda: self.watched(generation).done is not None)
        watched = self.watched(generation)
        if watched.done is None:
            raise AssertionError(f"no end of {generation} within {timeout} s: {watched.text!r}")
        return watched

    async def until_text(self, generation: str, characters: int, timeout: float = 10.0) -> None:
        await self._wait(timeout, lambda: len(self.watched(generation).text) >= characters)

    def watched(self, generation: str) -> Watched:
        return self.generations.setdefault(generation, Watched())

    async def _wait(self, timeout: float, condition: Any) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and (left := deadline - time.monotonic()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def _run(self) -> None:
        while True:
            try:
                self._socket = await websockets.connect(
                    self.url,
                    origin=self.origin,  # type: ignore[arg-type]
                    additional_headers={"Cookie": self.cookie},
                    open_timeout=5,
                    close_timeout=1,
                    ping_interval=None,
                )
                await self._subscribe()
                async for raw in self._socket:
                    await self._take(json.loads(raw))
            except asyncio.CancelledError:
                raise
            except Exception:  # a closed or refused socket: the page reconnects
                pass
            self.closes += 1
            await asyncio.sleep(0.25)

    async def _subscribe(self) -> None:
        positions = {gid: w.seq for gid, w in self.generations.items() if w.done is None}
        await self._socket.send(
            json.dumps(
                {"type": "subscribe", "conversation": self.conversation, "generations": positions}
            )
        )

    async def _take(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            message = frame["message"]
            if message["role"] == "user" and message.get("client_id"):
                self._sent[message["id"]] = message["client_id"]
            elif message["role"] == "assistant" and message.get("generation"):
                generation = message["generation"]["id"]
                if message["parent"] in self._sent:
                    self.replies[self._sent[message["parent"]]] = generation
                watched = self.watched(generation)
                if message["generation"]["status"] in FINAL and watched.done is None:
                    # Ended while the page was away, its log gone: the saved reply stands.
                    watched.pieces = [message["content"]]
                    watched.done = message["generation"]
        elif kind in ("chunk", "done"):
            watched = self.watched(frame["generation"])
            if watched.done is not None or frame["seq"] <= watched.seq:
                pass  # a duplicate
            elif frame["seq"] > watched.seq + 1:
                await self._subscribe()  # a gap: fill it from the log
            elif kind == "chunk":
                watched.pieces.append(frame["text"])
            else:
                watched.done = frame
        elif kind == "error":
            self.errors.append(frame)
        self._changed.set()


class Postgres:
    """A throwaway PostgreSQL cluster of the test's own, on its own port, to restart."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.log = directory.parent / f"postgres-{port}.log"
        self.url = f"postgres://postgres@127.0.0.1:{port}"

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=60)

    def init(self) -> Postgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory.parent, "postgres")
            shutil.chown(self.directory, "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.directory), "-A", "trust", "-U", "postgres"
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.directory),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-m", mode, "-w", "stop")


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else Path(shutil.which("pg_ctl") or "pg_ctl").parent


PG_BIN = _pg_bin()
