"""Serving a 1 GiB weight file through the app: throughput and the web process's extra memory.

    python bench/downloads.py               # 1 GiB, 3 downloads
    python bench/downloads.py --mib 256 --runs 5

It writes the file into a temporary folder (deleted at the end), attaches it to
a gate on the database ``gatehouse_bench``, starts uvicorn on loopback and
downloads the file through a signed link with ``curl`` and with bench/fetch.py (one
large receive buffer: the client that costs least, to show whether curl is the cap),
while sampling the web process's resident memory every 5 ms. In the same run it times
``cat FILE > /dev/null`` (the page cache is warm for both: attaching the file
read it whole), prints both figures and their ratio, and ends with the target
(at least 50% of ``cat``) for each path through the app: met or MISSED, with the figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    VAR,
    Process,
    bench_env,
    free_port,
    prepare_database,
)

MIB = 1024 * 1024
TARGET_OF_CAT = 0.5  # the target: through the app at least half of cat's rate
APP_PATHS = {"stream": "streamed by uvicorn", "accel": "handed to nginx (accel)"}


def write_file(path: Path, mib: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(block)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class RssPeak(threading.Thread):
    """The highest resident set size of ``pid`` while running."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, rss_bytes(pid), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.005)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def time_cat(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(f"cat '{path}' > /dev/null", shell=True, check=True)
    return time.perf_counter() - start


def time_curl(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run(
        ["curl", "-fsS", "-o", "/dev/null", "-w", "%{size_download}", url],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, int(result.stdout)


def time_fetch(url: str) -> tuple[float, int]:
    """Download with bench/fetch.py: the cheapest client, one 4 MiB receive buffer."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fetch.py"), url],
        check=True,
        capture_output=True,
        text=True,
    )
    received, seconds = result.stdout.split()
    return float(seconds), int(received)


CLIENTS = {"curl": time_curl, "lean": time_fetch}
CLIENT_NAMES = {"curl": "curl", "lean": "bench/fetch.py"}


def attach(path: Path, root: Path) -> tuple[str, int]:
    """Create the gate, a holder and the file; return the holder's signed link path and size."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from webapp.access.models import Gate, GateLevel, Grant
    from webapp.weights.links import link_sign
    from webapp.weights.services import weight_file_attach

    gate, _ = Gate.objects.get_or_create(slug="bench-weights", defaults={"name": "Bench weights"})
    GateLevel.objects.get_or_create(gate=gate, level="weights")
    user, _ = get_user_model().objects.get_or_create(email="bench-downloads@example.org")
    Grant.objects.filter(gate=gate, user=user).delete()
    Grant.objects.create(gate=gate, user=user, levels=["weights"])
    file = weight_file_attach(gate=gate, name=path.name, storage_path=str(path.relative_to(root)))
    signed = link_sign(user_id=user.pk, file_id=file.pk)
    return f"/weights/d/{signed}/{file.name}", file.size


NGINX = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {root}/nginx-tmp;
  proxy_temp_path {root}/nginx-tmp;
  fastcgi_temp_path {root}/nginx-tmp;
  uwsgi_temp_path {root}/nginx-tmp;
  scgi_temp_path {root}/nginx-tmp;
  server {{
    listen 127.0.0.1:{port};
    location /_weights/ {{ internal; alias {root}/; }}
    location /_direct/ {{ alias {root}/; }}
    location / {{ proxy_pass http://127.0.0.1:{upstream}; proxy_set_header Host $http_host; }}
  }}
}}
"""


def uvicorn(name: str, app: str, env: dict[str, str]) -> tuple[Process, str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning", "--loop", "uvloop"]
    command += ["--http", "httptools"]
    process = Process(name, command, env, VAR / f"downloads-{name}.log")
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url + ("/healthz" if app.startswith("webapp") else "/"))
    return process, url


def nginx(root: Path, upstream: str, env: dict[str, str]) -> tuple[Process, str] | None:
    """nginx in front of ``upstream``, serving X-Accel-Redirect from ``root``; None if absent."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else ""
    )
    if not binary:
        return None
    (root / "nginx-tmp").mkdir()
    port = free_port()
    conf = root / "nginx.conf"
    upstream_port = upstream.rsplit(":", 1)[1]
    conf.write_text(NGINX.format(root=root, port=port, upstream=upstream_port))
    process = Process("nginx", [binary, "-c", str(conf), "-p", str(root)], env, VAR / "nginx.log")
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(process, url + "/healthz")
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB (1024)")
    parser.add_argument("--runs", type=int, default=3, help="downloads and cats timed (3)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gatehouse-bench-weights-"))
    root.chmod(0o755)  # nginx's workers read the file too
    processes: list[Process] = []
    try:
        env = bench_env(
            database_url=args.database_url,
            redis_url=args.redis_url,
            overrides={"WEIGHTS_ROOT": str(root), "BARE_MIB": str(args.mib)},
        )
        os.environ.update(env)
        prepare_database(args.database_url, env)
        path = root / "model.safetensors"
        write_file(path, args.mib)
        path.chmod(0o644)
        link, size = attach(path, root)
        figures: dict = {"mib": args.mib, "bytes": size, "command": " ".join(sys.argv)}
        figures["cat_seconds"] = [time_cat(path) for _ in range(args.runs)]

        figures["sendfile"] = measure_sendfile(path, size, args.runs, env)
        bare, bare_url = uvicorn("bare", "bench.bare_asgi:app", env)
        processes.append(bare)
        figures["bare"] = measure(bare, bare_url + "/", size, args.runs)

        web, web_url = uvicorn("web", "webapp.asgi:application", env)
        processes.append(web)
        figures["stream"] = measure(web, web_url + link, size, args.runs)

        accel_env = {**env, "WEIGHTS_DELIVERY": "accel", "WEIGHTS_ACCEL_PREFIX": "/_weights/"}
        accel, accel_url = uvicorn("web-accel", "webapp.asgi:application", accel_env)
        processes.append(accel)
        front = nginx(root, accel_url, env)
        if front is not None:
            processes.append(front[0])
            figures["accel"] = measure(accel, front[1] + link, size, args.runs)
            direct = f"{front[1]}/_direct/{path.name}"
            figures["nginx"] = measure(front[0], direct, size, args.runs)
        report(figures)
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(root, ignore_errors=True)


def measure_sendfile(path: Path, size: int, runs: int, env: dict[str, str]) -> dict:
    """The loopback ceiling: a bare server that only calls ``os.sendfile``."""
    port = free_port()
    command = [sys.executable, str(ROOT / "bench" / "bare_sendfile.py"), str(path), str(port)]
    process = Process("sendfile", command, env, VAR / "downloads-sendfile.log")
    process.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        return measure(process, f"http://127.0.0.1:{port}/", size, runs)
    finally:
        process.stop()


def wait_ready(process: Process, url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.check()
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer:\n{process.tail()}")


def measure(web: Process, url: str, size: int, runs: int) -> dict:
    """Download ``url`` ``runs`` times with each client after a warm-up: throughput per
    client and the process's peak extra RSS."""
    assert web.pid is not None
    time_curl(url)  # warm up: imports, the first database connection
    figures: dict = {}
    extra = []
    for name, client in CLIENTS.items():
        seconds = []
        for _ in range(runs):
            before = rss_bytes(web.pid)
            sampler = RssPeak(web.pid)
            sampler.start()
            took, received = client(url)
            extra.append(sampler.stop() - before)
            if received != size:
                raise RuntimeError(f"{url}: received {received} bytes of {size}")
            seconds.append(took)
        figures[name] = {"seconds": seconds, "mib_s": size / statistics.median(seconds) / MIB}
    figures["peak_extra_rss_mib"] = max(extra) / MIB
    figures["rss_mib"] = rss_bytes(web.pid) / MIB
    return figures


def report(figures: dict) -> None:
    cat = figures["bytes"] / statistics.median(figures["cat_seconds"]) / MIB
    figures["cat_mib_s"] = cat
    print(f"file: {figures['mib']} MiB, medians of {len(figures['cat_seconds'])} runs")
    print(f"{'cat FILE > /dev/null':44} {cat:7.0f} MiB/s")
    rows = [
        ("sendfile", "a bare os.sendfile server (loopback ceiling)"),
        ("nginx", "nginx alone, the file from disk (sendfile)"),
        ("bare", "uvicorn alone, from memory (its ceiling)"),
        ("stream", "through the app, streamed by uvicorn"),
        ("accel", "through the app, nginx X-Accel-Redirect"),
    ]
    print(f"{'':44} {'curl -o /dev/null':>24}  {'bench/fetch.py':>22}")
    for key, label in rows:
        if key in figures:
            row = figures[key]
            cells = []
            for name in CLIENTS:
                row[name]["ratio_to_cat"] = row[name]["mib_s"] / cat
                cells.append(
                    f"{row[name]['mib_s']:7.0f} MiB/s {row[name]['ratio_to_cat']:5.0%} of cat"
                )
            print(
                f"{label:44} {'  '.join(cells)}  peak extra RSS {row['peak_extra_rss_mib']:.1f} MiB"
            )
    VAR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = VAR / f"downloads-{stamp}.json"
    figures["target"] = target_lines(figures, cat)
    out.write_text(json.dumps(figures, indent=2))
    print(f"figures: {out}")
    print("\n".join(figures["target"]))


def target_lines(figures: dict, cat: float) -> list[str]:
    """Say, per path through the app, whether it met the target, by its faster client."""
    lines = []
    for key, label in APP_PATHS.items():
        if key not in figures:
            continue
        client = max(CLIENTS, key=lambda name: figures[key][name]["mib_s"])
        rate = figures[key][client]["mib_s"]
        met = "met" if rate >= TARGET_OF_CAT * cat else "MISSED"
        lines.append(
            f"target: ≥ {TARGET_OF_CAT:.0%} of cat, through the app {label}: "
            f"{rate / cat:.0%} ({rate:.0f} of {cat:.0f} MiB/s, {CLIENT_NAMES[client]}) — {met}"
        )
    return lines


if __name__ == "__main__":
    main()
