"""Start and stop the processes a benchmark drives, and watch their CPU.

The stack is the production shape on one machine: PostgreSQL and Redis (already
running), the scripted inference server, uvicorn serving the ASGI application,
and a Celery worker with a thread pool (one process of each by default). Every process the stack
starts is stopped again, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gatehouse_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"


def bench_env(
    *, database_url: str, redis_url: str, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment shared by the benchmark process and every process it starts."""
    env = {
        "DJANGO_SETTINGS_MODULE": "webapp.settings.dev",
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + secrets.token_hex(16),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CHANNEL_PREFIX": "gatehouse-bench",
        # One user drives every stream: lift the per-user limits.
        "GENERATION_LIMIT_CONCURRENT": "1000000",
        "GENERATION_LIMIT_PER_MINUTE": "1000000",
        "GENERATION_LIMIT_TOKENS_PER_DAY": "0",
        "GENERATION_LIMIT_SOCKETS": "1000000",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database(database_url: str, env: dict[str, str]) -> None:
    """Create the benchmark database if it is missing and bring its schema up to date."""
    database_create(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )


def database_create(database_url: str) -> None:
    """Create the database ``database_url`` names, unless it exists."""
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin = psycopg.conninfo.make_conninfo(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password or None,
        dbname="postgres",
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


def database_url_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--database-url``: $DATABASE_URL, else the benchmark's own database."""
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    )


def django_in_process(database_url: str) -> None:
    """Set Django up in this process (test settings) on ``database_url``, made and migrated first.

    For benchmarks that time requests through Django's test client or call services
    directly, without a web process of their own.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    database_create(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.test")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def flush_redis(redis_url: str) -> None:
    """Empty the benchmark's own Redis database (token logs, queue, sessions of earlier runs)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def redis_pid(redis_url: str) -> int | None:
    import redis

    with contextlib.suppress(Exception):
        return int(redis.Redis.from_url(redis_url).info("server")["process_id"])
    return None


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the benchmark only; it stops us in order
        )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}; last lines of {self.log}:\n"
                + self.tail()
            )

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


@dataclass
class Stack:
    """The scripted inference server, uvicorn and Celery worker(s), as child processes."""

    env: dict[str, str]
    worker_concurrency: int = 256
    workers: int = 1  # Celery worker processes, each with worker_concurrency threads
    web_workers: int = 1  # uvicorn worker processes
    uvicorn_args: list[str] = field(default_factory=list)
    inference_max_log: int = 20_000
    web_port: int = 0
    inference: object | None = None  # tests.inference_server.harness.ScriptedServer
    web: Process | None = None
    worker_processes: list[Process] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self) -> None:
        from tests.inference_server.harness import ScriptedServer

        VAR.mkdir(parents=True, exist_ok=True)
        server = ScriptedServer(extra_args=("--max-log", str(self.inference_max_log)))
        self.inference = server
        server.start()
        self.web_port = self.web_port or free_port()
        web = [
            sys.executable, "-m", "uvicorn", "webapp.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.web_port),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        if importlib.util.find_spec("uvloop"):
            web += ["--loop", "uvloop"]
        if importlib.util.find_spec("httptools"):
            web += ["--http", "httptools"]
        if self.web_workers > 1:
            web += ["--workers", str(self.web_workers)]
        self.web = Process("web", web + self.uvicorn_args, self.env, VAR / "web.log")
        self.web.start()
        for n in range(self.workers):
            command = [
                sys.executable, "-m", "celery", "-A", "webapp", "worker",
                "-P", "threads", "-c", str(self.worker_concurrency), "-Q", "gatehouse",
                "-n", f"bench{n}@%h",
                "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
            ]  # fmt: skip
            process = Process("worker", command, self.env, VAR / f"worker{n or ''}.log")
            process.start()
            self.worker_processes.append(process)
        self._wait_web()
        self._wait_workers()

    def _wait_web(self, timeout: float = 30.0) -> None:
        assert self.web is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.web.check()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.web_url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the web server did not answer /healthz:\n{self.web.tail()}")

    def _wait_workers(self, timeout: float = 60.0) -> None:
        """Wait until every worker answers a remote-control ping on the broker."""
        from webapp.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.worker_processes:
                process.check()
            with contextlib.suppress(Exception):
                if len(app.control.ping(timeout=0.5)) >= len(self.worker_processes):
                    return
            time.sleep(0.2)
        tails = "\n".join(p.tail() for p in self.worker_processes)
        raise RuntimeError(f"the Celery workers did not answer a ping:\n{tails}")

    def check(self) -> None:
        for process in (self.web, *self.worker_processes):
            if process is not None:
                process.check()

    def pids(self) -> dict[str, list[int]]:
        """The root process ids of each part (CPU is counted over their process trees)."""
        found: dict[str, list[int]] = {}
        for process in (self.web, *self.worker_processes):
            if process is not None and process.pid:
                found.setdefault(process.name, []).append(process.pid)
        proc = getattr(self.inference, "_proc", None)
        if proc is not None:
            found["inference"] = [proc.pid]
        return found

    def stop(self) -> None:
        for process in (*self.worker_processes, self.web):
            if process is not None:
                with contextlib.suppress(Exception):
                    process.stop()
        if self.inference is not None:
            with contextlib.suppress(Exception):
                self.inference.stop()  # type: ignore[attr-defined]


def _process_table() -> dict[int, tuple[int, bytes, int]]:
    """pid -> (parent pid, command name, CPU ticks used so far: user + system)."""
    table: dict[int, tuple[int, bytes, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        close = data.rindex(b")")
        comm = data[data.index(b"(") + 1 : close]
        fields = data[close + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), comm, int(fields[11]) + int(fields[12]))
    return table


def _tree_ticks(table: dict[int, tuple[int, bytes, int]], roots: list[int]) -> int | None:
    """CPU ticks of ``roots`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, found, todo = 0, False, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table:
            found = True
            total += table[pid][2]
            todo.extend(children.get(pid, ()))
    return total if found else None


def _host_ticks() -> tuple[int, int, int]:
    """(busy, total, interrupt) clock ticks of all CPUs together."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return total - idle, total, values[5] + values[6]  # irq + softirq: loopback traffic


class CpuSampler:
    """Sample the CPU time of named processes every ``interval`` seconds in a thread.

    ``usage(start, end)`` is each process's CPU use between two wall-clock times,
    in percent of one core (200% = both cores of a 2-core machine).
    """

    def __init__(self, pids: dict[str, list[int]], interval: float = 0.5) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        now = time.time()
        values: dict[str, int] = {}
        table = _process_table()
        for name, roots in self.pids.items():
            ticks = _tree_ticks(table, roots)
            if ticks is not None:
                values[name] = ticks
        # The benchmark's own process only: the stack's processes are its children.
        if os.getpid() in table:
            values["bench client"] = table[os.getpid()][2]
        # Every PostgreSQL backend: the benchmark's, and anyone else's on this server.
        values["postgres (all)"] = sum(t for _, comm, t in table.values() if comm == b"postgres")
        busy, total, interrupts = _host_ticks()
        values["host busy"] = busy
        values["host total"] = total
        values["host interrupts"] = interrupts
        self.samples.append((now, values))

    def usage(self, start: float, end: float) -> dict[str, float]:
        """Percent of one core each process used between ``start`` and ``end`` (wall clock)."""
        if len(self.samples) < 2:
            return {}
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        last = min(self.samples, key=lambda s: abs(s[0] - end))
        if last[0] <= first[0]:
            first, last = self.samples[0], self.samples[-1]
        seconds = last[0] - first[0]
        out: dict[str, float] = {}
        for name, value in last[1].items():
            if name.startswith("host") or name not in first[1]:
                continue
            out[name] = round(100.0 * (value - first[1][name]) / CLOCK_TICKS / seconds, 1)
        busy = last[1]["host busy"] - first[1]["host busy"]
        total = last[1]["host total"] - first[1]["host total"]
        if total > 0:
            cores = os.cpu_count() or 1
            host = 100.0 * cores * busy / total
            irq = last[1]["host interrupts"] - first[1]["host interrupts"]
            out["kernel irq"] = round(100.0 * cores * irq / total, 1)
            ours = sum(out.values())
            out["host (all cores)"] = round(host, 1)
            out["other processes"] = round(max(0.0, host - ours), 1)
        return out


def host_busy(seconds: float = 2.0) -> float:
    """Percent of one core the whole machine is busy over ``seconds`` (before we start)."""
    busy0, total0, _ = _host_ticks()
    time.sleep(seconds)
    busy1, total1, _ = _host_ticks()
    return round(100.0 * (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0), 1)
