"""The chat send, written as SQL for PostgreSQL, works on the one-command run's SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def test_sends_resends_branches_and_regenerates_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings.dev",
        DATABASE_URL=f"sqlite:///{tmp_path / 'chat.sqlite3'}",
        REDIS_URL=settings.REDIS_URL,
    )
    result = subprocess.run(
        [sys.executable, "-m", "tests.sqlite_chat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(result.stdout.strip().splitlines()[-1])
    assert saved["second_input"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Again"},
    ]
    # The one slot was free again: the first reply was marked done.
    assert saved["second_admitted"] is True
    assert (saved["resent_same"], saved["resent_created"]) == (True, False)
    assert saved["busy"] == "busy"
    assert saved["branch_input"] == ["Hello", "Fine", "From the start"]
    assert saved["regenerated_input"] == ["Hello", "Fine", "From the start"]
    assert saved["leaf_is_regenerated"] is True
    assert saved["generations"] == 4
