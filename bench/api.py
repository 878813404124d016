"""What the OpenAI-compatible API adds over calling the inference server directly.

    python bench/api.py              # about two minutes
    python bench/api.py --singles 100 --seconds 15 --levels 1,10,50

It starts the stack itself (the scripted inference server, uvicorn and one Celery
worker, on loopback) on the database ``gatehouse_api_bench`` and Redis database 14,
creates a user with a personal token, and measures in the same run, against the
same scripted server:

- first token: streamed chat completions one at a time, alternating between
  Gatehouse's ``/v1/chat/completions`` and the server's own; p50 and p99 of each,
  and what Gatehouse adds;
- requests per second: short non-streaming completions (4 tokens, no delay) from
  1, 10 and 50 concurrent clients for a few seconds each, through Gatehouse's
  ``/v1/chat/completions`` and ``/v1/completions``, and directly.

It prints the figures, writes them to var/bench/api-<time>.json, and stops every
process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.figures import spread  # noqa: E402
from bench.stack import VAR, CpuSampler, Stack, bench_env, flush_redis, host_busy  # noqa: E402
from bench.stack import prepare_database as database_prepare  # noqa: E402

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gatehouse_api_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
SINGLE_TOKENS, SINGLE_RATE = 8, 200.0
SHORT_TOKENS = 4
NAMES = ("direct chat", "api chat", "direct completions", "api completions")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--singles", type=int, default=60, help="first-token samples per side")
    parser.add_argument("--levels", default="1,10,50", help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=8.0, help="per level and target")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    args.levels = [int(v) for v in args.levels.split(",")]
    return args


def fixtures(inference_url: str) -> tuple[str, str]:
    """Create the benchmark's model and a user's token; return (model slug, token)."""
    from webapp.accounts.models import User
    from webapp.accounts.tokens.services import token_create
    from webapp.catalog.models import AccessPolicy, LanguageModel, ModelEndpoint

    user, _ = User.objects.get_or_create(email="api-bench@example.org")
    model, _ = LanguageModel.objects.update_or_create(
        slug="bench-api",
        defaults={
            "display_name": "Bench (API)",
            "backend": "openai",
            "access_policy": AccessPolicy.REGISTERED,
            "default_params": {"max_new_tokens": 64},
            "is_active": True,
        },
    )
    model.endpoints.all().delete()
    # The API is measured, not the fair queue: every call gets a slot at once.
    ModelEndpoint.objects.create(model=model, url=inference_url, max_concurrent=100_000)
    _, secret = token_create(user=user, name="bench", scopes=["chat", "completions", "models"])
    return model.slug, secret


def prompt(**script: Any) -> str:
    from tests.inference_server.scripts import directive

    return f"{directive(**script)} bench {uuid.uuid4().hex[:8]}"


class Target:
    """Where requests go: Gatehouse's /v1 or the inference server's own."""

    def __init__(self, name: str, base: str, model: str, token: str) -> None:
        self.name, self.base, self.model = name, base, model
        self.headers = {"Authorization": f"Bearer {token}"}

    def chat(self, content: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        body = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        return f"{self.base}/chat/completions", {**body, **fields}

    def completion(self, text: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        return f"{self.base}/completions", {"model": self.model, "prompt": text, **fields}


async def first_token_ms(client: httpx.AsyncClient, target: Target) -> float:
    """Send a streamed chat completion; return the ms until its first text arrives."""
    url, body = target.chat(prompt(n_tokens=SINGLE_TOKENS, rate=SINGLE_RATE), stream=True)
    started = time.perf_counter()
    first = None
    async with client.stream("POST", url, json=body, headers=target.headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is None and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"{target.name}: a stream without text")
    return first


async def singles(client: httpx.AsyncClient, api: Target, direct: Target, count: int) -> dict:
    times: dict[str, list[float]] = {"api": [], "direct": []}
    for _ in range(3):  # warm both paths up (connections, first imports)
        await first_token_ms(client, api)
        await first_token_ms(client, direct)
    for _ in range(count):
        times["api"].append(await first_token_ms(client, api))
        times["direct"].append(await first_token_ms(client, direct))
    result = {name: spread(values) for name, values in times.items()}
    result["added_ms"] = {
        q: round(result["api"][q] - result["direct"][q], 2) for q in ("p50", "p99")
    }
    return result


async def short_calls(
    client: httpx.AsyncClient, target: Target, kind: str, clients: int, seconds: float
) -> dict:
    """Run ``clients`` loops of short non-streaming calls for ``seconds``; return req/s."""
    deadline = time.perf_counter() + seconds
    done, failed, latencies = 0, 0, []

    async def loop() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            text = prompt(n_tokens=SHORT_TOKENS, rate=0)
            url, body = target.chat(text) if kind == "chat" else target.completion(text)
            started = time.perf_counter()
            response = await client.post(
                url, json={**body, "max_tokens": 16}, headers=target.headers
            )
            if response.status_code == 200:
                done += 1
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests_per_second": round(done / elapsed, 1),
        "failed": failed,
        "latency_ms": spread(latencies),
    }


async def run(args: argparse.Namespace, stack: Stack, slug: str, token: str) -> dict[str, Any]:
    api = Target("gatehouse", f"{stack.web_url}/v1", slug, token)
    direct = Target("direct", f"{stack.inference.url}/v1", "scripted", "none")  # type: ignore[attr-defined]
    limits = httpx.Limits(max_connections=max(args.levels) + 10, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        print("first token, one call at a time…", flush=True)
        result: dict[str, Any] = {"first_token": await singles(client, api, direct, args.singles)}
        result["throughput"] = []
        sampler = CpuSampler(stack.pids())
        with sampler:
            for clients in args.levels:
                row: dict[str, Any] = {"clients": clients}
                for name, target, kind in (
                    ("direct chat", direct, "chat"),
                    ("api chat", api, "chat"),
                    ("direct completions", direct, "completions"),
                    ("api completions", api, "completions"),
                ):
                    print(f"{clients} clients, {name}…", flush=True)
                    start = time.time()
                    row[name] = await short_calls(client, target, kind, clients, args.seconds)
                    row[name]["cpu_percent"] = sampler.usage(start, time.time())
                result["throughput"].append(row)
    return result


def report(result: dict[str, Any]) -> str:
    first = result["first_token"]
    lines = [
        "First token, streamed chat completions one at a time (ms):",
        f"  {'':<10}{'p50':>8}{'p99':>8}",
        f"  {'direct':<10}{first['direct']['p50']:>8}{first['direct']['p99']:>8}",
        f"  {'gatehouse':<10}{first['api']['p50']:>8}{first['api']['p99']:>8}",
        f"  {'added':<10}{first['added_ms']['p50']:>8}{first['added_ms']['p99']:>8}",
        "",
        "Short non-streaming calls (4 tokens), requests per second [p50 latency ms]:",
        f"  {'clients':<8}" + "".join(f"{name:>22}" for name in NAMES),
    ]
    for row in result["throughput"]:
        cells = [f"{row[n]['requests_per_second']} [{row[n]['latency_ms']['p50']}]" for n in NAMES]
        failed = sum(row[n]["failed"] for n in ("api chat", "api completions"))
        note = f"  ({failed} refused)" if failed else ""
        lines.append(f"  {row['clients']:<8}" + "".join(f"{c:>22}" for c in cells) + note)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = bench_env(database_url=args.database_url, redis_url=args.redis_url)
    env["CHANNEL_PREFIX"] = "gatehouse-api-bench"
    os.environ.update(env)
    busy = host_busy()
    if busy > 20:
        print(f"warning: the machine is {busy:.0f}% busy (of one core) before the run", flush=True)
    database_prepare(args.database_url, env)
    flush_redis(args.redis_url)
    import django

    django.setup()
    stack = Stack(env=env)
    try:
        stack.start()
        slug, token = fixtures(stack.inference.url)  # type: ignore[attr-defined]
        result = asyncio.run(run(args, stack, slug, token))
    finally:
        stack.stop()
    result["busy_before_start_percent_of_one_core"] = busy
    output = args.output or VAR / f"api-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print(report(result))
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
