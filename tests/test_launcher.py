"""`make run`'s start-up path: every process comes up, answers, and goes away on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import bundled_model_skip_reason
from tests.services import ROOT, free_port

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def until(condition: Callable[[], bool], *, timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Launch:
    def __init__(self, var_dir: Path, *, embedded_model: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(
            DJANGO_SETTINGS_MODULE="webapp.settings.dev",
            GATEHOUSE_VAR_DIR=str(var_dir),
            PORT=str(self.port),
            EMBEDDED_MODEL=embedded_model,
            PYTHONUNBUFFERED="1",
        )
        self.log = var_dir / "launch.log"
        var_dir.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webapp.launcher"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Press Ctrl-C to stop everything" in self.output():
                return self.output()
            assert self.process.poll() is None, self.output()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout}s:\n{self.output()[-3000:]}")

    def interrupt(self) -> set[int]:
        """Press Ctrl-C and return the processes that were running under the launcher."""
        running = descendants(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        return running


def test_make_run_starts_every_process_and_ctrl_c_stops_them_all(tmp_path):
    embedded = "off" if bundled_model_skip_reason() else "auto"
    launch = Launch(tmp_path / "var", embedded_model=embedded)
    try:
        output = launch.wait_ready()
        base = f"http://127.0.0.1:{launch.port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        if embedded == "auto":  # the bundled model is the backend /readyz probes in the background
            assert until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=30)
        for name in ("web.1", "worker.1", "redis.1"):
            assert re.search(rf"{re.escape(name)}\s+\| ", output), name
        login = re.search(r"Sign in as (\S+) with password (\S+)", output)
        assert login and login.group(1) == "demo@example.com"
        assert (tmp_path / "var" / "gatehouse.sqlite3").exists()
    finally:
        children = launch.interrupt()
    assert children, "the launcher started no processes"
    assert until(lambda: not any(alive(pid) for pid in children), timeout=10), (
        "processes outlived Ctrl-C"
    )

    again = Launch(tmp_path / "var", embedded_model="off")
    try:
        output = again.wait_ready()
        assert "Sign in as demo@example.com with password " + login.group(2) in output
    finally:
        again.interrupt()
