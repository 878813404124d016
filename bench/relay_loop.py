"""The CPU a worker's relay loop spends per token, against reading the same streams bare.

    python bench/relay_loop.py                  # about a minute
    python bench/relay_loop.py --streams 200 --tokens 300 --rounds 5

One process, one event loop, as in a worker: the scripted inference server (a child
process on loopback) streams ``--streams`` replies at 30 tokens/s at once, and the
loop reads them either as Gatehouse does (``inference.generation.Generation``: the
backend's parser, chunking, the token log and the announcements in Redis database
13) or bare (aiohttp reading the SSE lines and ``json.loads`` of each, nothing
more). Rounds alternate between the two; the figure is the loop's CPU time per
token (``time.process_time``), and the ratio of the relay's to the bare read's in
the same run. CPU time, unlike a latency percentile, barely moves with what the
rest of the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=150, help="tokens per stream")
    parser.add_argument("--rate", type=float, default=30.0, help="tokens/s of every stream")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind")
    return parser.parse_args(argv)


async def relayed(url: str, streams: int) -> int:
    from inference.backends import Endpoint
    from inference.generation import Generation, Job, Limits
    from inference.params import params_parse

    limits = Limits.from_settings({**_settings().GENERATION, "FIRST_TOKEN_TIMEOUT": 30.0})

    async def one() -> int:
        job = Job(
            generation_id=str(uuid.uuid4()),
            group="bench.relay-loop",
            endpoint=Endpoint(kind="openai", url=f"{url}/v1", api_key="", model="m"),
            messages=[{"role": "user", "content": "Hi"}],
            params=params_parse({}, backend="openai"),
        )
        outcome = await Generation(job, limits).run()
        if outcome.status != "done":
            raise RuntimeError(f"a relayed stream ended {outcome.status}: {outcome.error_detail}")
        return outcome.token_count

    return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def bare(url: str, streams: int) -> int:
    import aiohttp

    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}

    async def one(session: aiohttp.ClientSession) -> int:
        count = 0
        async with session.post(f"{url}/v1/chat/completions", json=body) as response:
            async for line in response.content:
                if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                count += sum(1 for c in chunk.get("choices", ()) if c["delta"].get("content"))
        return count

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        return sum(await asyncio.gather(*(one(session) for _ in range(streams))))


def _settings():  # type: ignore[no-untyped-def]
    from django.conf import settings

    return settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the harness's control calls
    from tests.inference_server.harness import ScriptedServer

    server = ScriptedServer().start()
    per_token: dict[str, list[float]] = {"relay": [], "bare": []}
    try:
        runner = asyncio.Runner()
        for round_ in range(args.rounds):
            for kind, read in (("relay", relayed), ("bare", bare)):
                for _ in range(args.streams):
                    server.push({"n_tokens": args.tokens, "rate": args.rate})
                began, wall = time.process_time(), time.monotonic()
                tokens = runner.run(read(server.url, args.streams))
                cpu = time.process_time() - began
                if tokens != args.streams * args.tokens:
                    raise RuntimeError(f"{kind}: {tokens} tokens of {args.streams * args.tokens}")
                per_token[kind].append(cpu / tokens * 1e6)
                print(
                    f"round {round_ + 1} {kind:5}: {tokens} tokens, loop CPU {cpu:.2f} s in "
                    f"{time.monotonic() - wall:.1f} s, {per_token[kind][-1]:.1f} µs a token",
                    flush=True,
                )
        # Not runner.close(): asyncio's teardown of this loop has waited forever, now and
        # then, for a task to finish cancelling (docs/performance.md); the figures are in.
    finally:
        server.stop()
    relay, base = statistics.median(per_token["relay"]), statistics.median(per_token["bare"])
    print(
        f"\n{args.streams} streams at {args.rate:g} tokens/s, medians of {args.rounds} rounds: "
        f"relay {relay:.1f} µs a token, bare read {base:.1f} µs a token, "
        f"ratio {relay / base:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
