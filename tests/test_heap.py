"""The web server and the worker freeze what they hold once started (webapp/core/heap.py),
so a full garbage collection no longer walks Django and Celery while replies stream."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WEB = "import gc, webapp.asgi; print(gc.get_freeze_count())"
WORKER = (
    "import gc, django; django.setup(); from webapp.celery import app; "
    "from celery.signals import worker_ready; worker_ready.send(sender=None); "
    "print(gc.get_freeze_count())"
)


def frozen(code: str, **env: str) -> int:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def test_a_started_web_process_and_worker_keep_their_objects_out_of_full_collections():
    assert frozen(WEB) > 50_000
    assert frozen(WORKER) > 50_000


def test_gc_freeze_off_leaves_the_collector_as_python_has_it():
    assert frozen(WEB, GC_FREEZE="0") == 0
    assert frozen(WORKER, GC_FREEZE="0") == 0
