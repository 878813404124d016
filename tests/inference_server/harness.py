"""Start the scripted inference server in a subprocess and drive it from tests.

with ScriptedServer() as server:
    server.push({"tokens": ["Hi", "!"]}, {"status": 429})
    ...  # point the code under test at server.url
    server.wait_for_disconnect(timeout=5)
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_READY = re.compile(r"scripted inference server listening on (http://\S+)")


class ScriptedServer:
    """A scripted inference server running as a child process on a free loopback port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_concurrent_requests: int = 0,
        startup_timeout: float = 20.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.max_concurrent_requests = max_concurrent_requests
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self._url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._client: httpx.Client | None = None

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (TGI root; OpenAI lives under /v1)."""
        if self._url is None:
            raise RuntimeError("ScriptedServer is not running; call start() first")
        return self._url

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ScriptedServer:
        if self.running:
            return self
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="scripted-inference-", suffix=".log", delete=False
        )
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        cmd = [
            sys.executable,
            "-m",
            "tests.inference_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--max-concurrent-requests",
            str(self.max_concurrent_requests),
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        try:
            self._url = self._wait_for_ready_line(deadline)
            self._client = httpx.Client(base_url=self._url, timeout=10.0)
            self._wait_for_health(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_ready_line(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            match = _READY.search(self.output())
            if match:
                return match.group(1)
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"scripted inference server exited with {self._proc.returncode}:\n"
                    + self.output()
                )
            time.sleep(0.02)
        raise TimeoutError("scripted inference server did not start:\n" + self.output())

    def _wait_for_health(self, deadline: float) -> None:
        assert self._client is not None
        while True:
            try:
                if self._client.get("/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("scripted inference server is not healthy:\n" + self.output())
            time.sleep(0.02)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        self._url = None

    def kill(self) -> None:
        """End the server with SIGKILL, as a crash or the OOM killer would: its streams
        stop mid-response and the kernel closes their sockets."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self.stop()

    def output(self) -> str:
        """Everything the server process printed so far."""
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control API ---------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("ScriptedServer is not running; call start() first")
        return self._client

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(
                f"control API {response.request.url.path} -> {response.status_code}: "
                f"{response.text}"
            )
        return response.json()

    def push(self, *scripts: dict[str, Any]) -> int:
        """Append scripts to the FIFO queue; returns the queue length."""
        data = self._json(self.client.post("/_control/scripts", json={"scripts": list(scripts)}))
        return data["queued"]

    def set_default(self, script: dict[str, Any] | None) -> None:
        """Script used when the prompt has no directive and the queue is empty (None: built-in)."""
        self._json(self.client.post("/_control/default", json=script))

    def reset(self) -> None:
        """Clear the queue, the default script and the request log."""
        self._json(self.client.post("/_control/reset"))

    def queued(self) -> list[dict[str, Any]]:
        return self._json(self.client.get("/_control/scripts"))["queued"]

    def requests(self, *, path: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """The request log, oldest first (``kind`` is "generation" or "meta")."""
        params = {k: v for k, v in (("path", path), ("kind", kind)) if v}
        return self._json(self.client.get("/_control/requests", params=params))

    def generations(self) -> list[dict[str, Any]]:
        """Logged generation requests (TGI /generate*, / and OpenAI chat completions)."""
        return self.requests(kind="generation")

    def _wait(self, timeout: float, **params: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in params.items() if v is not None}
        response = self.client.get(
            "/_control/wait", params={**params, "timeout": timeout}, timeout=timeout + 10
        )
        data = response.json()
        if response.status_code == 408:
            summary = [
                {k: r[k] for k in ("id", "path", "outcome", "tokens_sent")}
                for r in self.generations()
            ]
            raise TimeoutError(f"gave up after {timeout}s waiting for {params}; log: {summary}")
        return self._json(response)["requests"] if "requests" in data else data

    def wait_for_disconnect(
        self, timeout: float = 5.0, *, count: int = 1, request_id: int | None = None
    ) -> dict[str, Any]:
        """Wait until ``count`` generations saw their client disconnect; returns the latest."""
        found = self._wait(timeout, disconnected=1, count=count, id=request_id)
        return found[-1]

    def wait_for_requests(
        self, count: int = 1, timeout: float = 5.0, *, ended: bool = False
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` generations arrived (``ended``: and finished, any outcome)."""
        return self._wait(timeout, count=count, ended=1 if ended else None)

    def wait_for_hang(self, timeout: float = 5.0, *, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` generations are stalled by ``hang`` / ``hang_after``."""
        return self._wait(timeout, hanging=1, count=count)
