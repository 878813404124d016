"""Open a conversation of 2,000 messages and search 100,000 messages of one user, each
timed next to opening a 10-message conversation in the same run.

    python bench/conversations.py [--database-url URL] [--messages 100000] [--runs 7]

Runs in-process through Django's test client (no network) against PostgreSQL
(default: $DATABASE_URL, else the database ``gatehouse_bench``, migrated first).
The data is made with bulk_create under a fresh user and deleted at the end: a
conversation of 10 messages, two of 2,000 (one to open warm, one cold), and
conversations of 2,000 (the last one shorter) up to ``--messages`` in all.
Times are medians of ``--runs`` requests after one warm-up; the SQL query count of
each request is printed beside it. The first open of a 2,000-message conversation
(its replies rendered and their HTML kept) is timed once, on a conversation of its own.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import database_url_argument, django_in_process  # noqa: E402

WORDS = (
    "river",
    "stone",
    "cloud",
    "lantern",
    "orbit",
    "maple",
    "copper",
    "harbor",
    "violet",
    "meadow",
    "signal",
    "thunder",
    "quartz",
    "pepper",
    "saddle",
    "glacier",
    "willow",
    "ember",
    "falcon",
    "tundra",
)

FIXED = 10 + 2000 + 2000  # the conversations opened: small, large, cold


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    database_url_argument(parser)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    if args.messages < FIXED:
        parser.error(f"--messages must be at least {FIXED}")
    return args


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _conversation(user, model, count: int, rng: random.Random, rare_every: int = 0):  # type: ignore[no-untyped-def]
    """Create a chain of ``count`` messages (user, reply, user, …) with bulk_create."""
    from django.utils import timezone

    from webapp.chat.models import Conversation, Message, Role
    from webapp.generations.models import Generation, Origin, Status

    conversation = Conversation.objects.create(user=user, model=model, title=f"bench {count}")
    generations, messages, parent = [], [], None
    for i in range(count):
        message = Message(id=uuid.uuid4(), conversation=conversation, parent_id=parent)
        if i % 2:
            text = _text(rng, 40)
            if rare_every and i % rare_every == 1:
                text += " narwhal"
            generation = Generation(
                id=uuid.uuid4(),
                user=user,
                language_model=model,
                origin=Origin.CHAT,
                channel_group=conversation.group,
                status=Status.DONE,
                text=text,
                params={"temperature": 0.7},
            )
            generations.append(generation)
            message.role, message.generation_id = Role.ASSISTANT, generation.id
        else:
            message.role, message.content = Role.USER, _text(rng, 12)
        messages.append(message)
        parent = message.id
    Generation.objects.bulk_create(generations, batch_size=2000)
    Message.objects.bulk_create(messages, batch_size=2000)
    stamp = timezone.now()
    for i, message in enumerate(messages):  # parents older than children
        message.created_at = stamp + timezone.timedelta(microseconds=i)
    Message.objects.bulk_update(messages, ["created_at"], batch_size=2000)
    return conversation


def _timed(client, url: str, runs: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert client.get(url).status_code == 200  # warm-up
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), len(queries)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    django_in_process(args.database_url)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.factories import LanguageModelFactory, UserFactory
    from webapp.chat.models import Message

    rng = random.Random(10)
    user = UserFactory(email=f"bench-{uuid.uuid4().hex[:8]}@example.org")
    model = LanguageModelFactory(slug=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        print(f"creating the data ({args.messages} messages)…", flush=True)
        small = _conversation(user, model, 10, rng)
        large = _conversation(user, model, 2000, rng)
        cold = _conversation(user, model, 2000, rng)
        rest = args.messages - FIXED
        for size in [2000] * (rest // 2000) + ([rest % 2000] if rest % 2000 else []):
            _conversation(user, model, size, rng, rare_every=400)
        made = Message.objects.filter(conversation__user=user).count()
        assert made == args.messages, (made, args.messages)
        with connection.cursor() as cursor:  # fresh statistics, as autovacuum would leave
            cursor.execute("ANALYZE chat_message, generations_generation, chat_conversation")
        client = Client()
        client.force_login(user)
        client.get(small.get_absolute_url())  # the first request of the process sets up Django
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            assert client.get(cold.get_absolute_url()).status_code == 200
            cold_ms, cold_queries = (time.perf_counter() - start) * 1000, len(queries)
        rows = [
            ("open a 10-message conversation", small.get_absolute_url()),
            ("open a 2,000-message conversation", large.get_absolute_url()),
            ("search a rare word (narwhal)", "/c/search?q=narwhal"),
            ("search a common word (river)", "/c/search?q=river"),
            ("search two words (copper harbor)", "/c/search?q=copper+harbor"),
        ]
        base = None
        print(f"\n{'request':38} {'median ms':>10} {'queries':>8} {'x 10-msg':>9}")
        for name, url in rows:
            ms, queries = _timed(client, url, args.runs)
            base = base or ms
            print(f"{name:38} {ms:10.1f} {queries:8d} {ms / base:9.1f}")
            if url == large.get_absolute_url():
                name = "  its first open (one sample)"
                print(f"{name:38} {cold_ms:10.1f} {cold_queries:8d} {cold_ms / base:9.1f}")
    finally:
        user.delete()
        model.delete()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
