"""Fair share under load: does a light user still get a quick first token while heavy
users keep the model's queue full?

    python bench/fairness.py            # 10 heavy users x 10 queued, 20 light sends
    python bench/fairness.py --sends 40 --capacity 4 --tokens 20 --rate 50

It starts the stack itself (the scripted inference server, uvicorn and one Celery
worker on loopback; database ``gatehouse_bench``, Redis database 8). The model has one
endpoint that serves ``--capacity`` replies at once. The light user sends one message
at a time over the websocket and times its first token: first on an idle system, then
while ``--heavy`` users each keep ``--backlog`` generations queued or running (topped
up as theirs finish). Both sets of figures come from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import clients, figures  # noqa: E402
from bench.stack import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    Stack,
    bench_env,
    flush_redis,
    prepare_database,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heavy", type=int, default=10, help="heavy users")
    parser.add_argument("--backlog", type=int, default=10, help="generations each keeps queued")
    parser.add_argument("--sends", type=int, default=20, help="light user's sends per phase")
    parser.add_argument("--capacity", type=int, default=4, help="replies served at once")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per reply")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens/s per reply")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    return parser.parse_args(argv)


class World:
    """The model, the light user (with a session) and the heavy users, through the ORM."""

    def __init__(self, *, inference_url: str, capacity: int, tokens: int) -> None:
        from django.test import Client

        from webapp.accounts.models import User
        from webapp.catalog.models import AccessPolicy, LanguageModel, ModelEndpoint

        self.model, _ = LanguageModel.objects.update_or_create(
            slug="bench-fairness",
            defaults={
                "display_name": "Bench (fairness)",
                "backend": "openai",
                "access_policy": AccessPolicy.REGISTERED,
                "default_params": {"max_new_tokens": tokens + 8},
                "is_active": True,
            },
        )
        self.model.endpoints.all().delete()
        ModelEndpoint.objects.create(model=self.model, url=inference_url, max_concurrent=capacity)
        self.light, _ = User.objects.get_or_create(email="light@example.org")
        self.heavy = [
            User.objects.get_or_create(email=f"heavy{n}@example.org")[0] for n in range(10)
        ]
        client = Client()
        client.force_login(self.light)
        self.cookie = f"sessionid={client.cookies['sessionid'].value}"

    def conversation(self) -> str:
        from webapp.chat.models import Conversation

        return str(Conversation.objects.create(user=self.light, model=self.model).pk)


class Feeder(threading.Thread):
    """Keeps each heavy user's generations queued or running at ``backlog``."""

    def __init__(self, world: World, *, users: int, backlog: int, content: str) -> None:
        super().__init__(daemon=True, name="heavy-users")
        self.world, self.users, self.backlog, self.content = world, users, backlog, content
        self.stop = threading.Event()
        self.created = 0

    def run(self) -> None:
        from django.db import connection, transaction

        from webapp.generations.models import ACTIVE_STATUSES, Generation
        from webapp.generations.services import generation_create

        heavy = self.world.heavy[: self.users]
        while not self.stop.is_set():
            for user in heavy:
                active = Generation.objects.filter(user=user, status__in=ACTIVE_STATUSES).count()
                for _ in range(self.backlog - active):
                    with transaction.atomic():
                        generation_create(
                            user=user,
                            model=self.world.model,
                            origin="api",
                            messages=[{"role": "user", "content": self.content}],
                        )
                    self.created += 1
            self.stop.wait(0.2)
        connection.close()

    def waiting(self) -> int:
        from webapp.generations.models import Generation

        return Generation.objects.filter(
            language_model=self.world.model, status="queued", admitted_at__isnull=True
        ).count()


async def light_sends(
    world: World, ws_url: str, origin: str, *, sends: int, content: str
) -> list[float]:
    """Send one message at a time; return each reply's first-token time in ms."""
    from asgiref.sync import sync_to_async

    ws = await clients.ws_connect(ws_url, origin=origin, cookie=world.cookie)
    times = []
    try:
        for _ in range(sends):
            conversation = await sync_to_async(world.conversation)()
            stream = clients.Stream(key=uuid.uuid4().hex[:12], content=content)
            stream.conversation = conversation
            loop = asyncio.get_running_loop()
            await clients.ws_stream(ws, stream, start_at=loop.time(), deadline=loop.time() + 120)
            if stream.error or stream.sent_at is None:
                raise RuntimeError(f"a light send failed: {stream.error}")
            first = next(at for at, raw in stream.frames if json.loads(raw).get("type") == "chunk")
            times.append((first - stream.sent_at) * 1000)
    finally:
        await clients.ws_close_all([ws])
    return times


def summary(times: list[float]) -> str:
    p50, p99 = figures.percentile(times, 50), figures.percentile(times, 99)
    return f"p50 {p50:8.1f} ms   p99 {p99:8.1f} ms   (n={len(times)})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = bench_env(database_url=args.database_url, redis_url=args.redis_url)
    os.environ.update(env)
    prepare_database(args.database_url, env)
    flush_redis(args.redis_url)
    import django

    django.setup()
    from tests.inference_server import directive

    stack = Stack(env=env, worker_concurrency=64)
    try:
        print("starting the inference server, uvicorn and a Celery worker…", flush=True)
        stack.start()
        world = World(
            inference_url=stack.inference.url,  # type: ignore[attr-defined]
            capacity=args.capacity,
            tokens=args.tokens,
        )
        content = f"{directive(n_tokens=args.tokens, rate=args.rate)} hi"
        ws_url = stack.web_url.replace("http://", "ws://") + "/ws/chat/"
        run = asyncio.run
        run(light_sends(world, ws_url, stack.web_url, sends=3, content=content))  # warm up
        idle = run(light_sends(world, ws_url, stack.web_url, sends=args.sends, content=content))
        feeder = Feeder(world, users=args.heavy, backlog=args.backlog, content=content)
        feeder.start()
        time.sleep(2.0)  # let the backlog fill
        waiting = feeder.waiting()
        loaded = run(light_sends(world, ws_url, stack.web_url, sends=args.sends, content=content))
        waiting = max(waiting, feeder.waiting())
        feeder.stop.set()
        feeder.join(timeout=10)
    finally:
        stack.stop()
    reply_s = args.tokens / args.rate
    print()
    print(
        f"one endpoint, {args.capacity} replies at once, {args.tokens} tokens at "
        f"{args.rate:.0f} tok/s ({reply_s:.2f} s a reply)"
    )
    print(f"light user, idle system:    {summary(idle)}")
    print(
        f"light user, under load:     {summary(loaded)}   "
        f"[{args.heavy} heavy users x {args.backlog}, {waiting} waiting, {feeder.created} created]"
    )
    ratio = figures.percentile(loaded, 50) / figures.percentile(idle, 50)
    print(f"loaded / idle first-token p50: {ratio:.1f}x")
    fifo_s = waiting * reply_s / args.capacity
    print(f"(a first-come queue would make each light send wait about {fifo_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
