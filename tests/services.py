"""Real processes the end-to-end tests run: the Celery worker, the ASGI server, the model server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_env() -> dict[str, str]:
    """Return the environment that points a child process at the test database and Redis."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }


class Service:
    """A child process with its output in var/test-logs/<name>.log and a readiness check."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        ready: Callable[[Service], bool],
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name, self.command, self.ready_check = name, command, ready
        self.env, self.timeout = env, timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log = LOGS / f"{name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Service:
        LOGS.mkdir(parents=True, exist_ok=True)
        if self.process is None:  # a restart appends: the log keeps what happened before
            self.log.write_bytes(b"")
        self.start_offset = self.log.stat().st_size
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")
            if self.ready_check(self):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready:\n{self.output()[-3000:]}")

    def recent(self) -> str:
        """What it wrote since it was last started (readiness checks read only this)."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(getattr(self, "start_offset", 0))
            return log.read().decode(errors="replace")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """Kill abruptly, as an out-of-memory kill or a lost machine would."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def http_ok(url: str) -> Callable[[Service], bool]:
    def check(_: Service) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def celery_worker() -> Service:
    return Service(
        "worker",
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
        env=test_database_env(),
        ready=lambda service: "ready." in service.recent(),
    )


def asgi_server(
    port: int, *, mail_dir: Path | None = None, env: dict[str, str] | None = None, name: str = "web"
) -> Service:
    """uvicorn serving the app on ``port``; its mail lands in files in ``mail_dir``."""
    env = dict(env or test_database_env())
    if mail_dir is not None:
        env["TEST_EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
        env["TEST_EMAIL_FILE_PATH"] = str(mail_dir)
    command = [sys.executable, "-m", "uvicorn", "webapp.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    return Service(name, command, env=env, ready=http_ok(f"http://127.0.0.1:{port}/healthz"))


def bundled_model_server(port: int) -> Service:
    from webapp.launcher import model_server_command

    return Service(
        "model",
        model_server_command(port),
        ready=http_ok(f"http://127.0.0.1:{port}/v1/models"),
        timeout=120,
    )
