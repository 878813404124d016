"""/readyz answers from background probes at once; the probe tells a live server from a dead one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from inference.backends.health import endpoint_probe
from tests.factories import LanguageModelFactory, ModelEndpointFactory
from tests.services import free_port


class HeldServer:
    """A loopback server that takes one connection and answers it 200 only once released."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connected, self.release = threading.Event(), threading.Event()
        self.request = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        self._listener.close()  # one connection only: a second probe would be refused
        with conn:
            self.connected.set()
            while b"\r\n\r\n" not in self.request and (data := conn.recv(4096)):
                self.request += data
            self.release.wait()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def held_server() -> Iterator[HeldServer]:
    server = HeldServer()
    yield server
    server.release.set()


def wait_for_backend(client, *, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while not (body := client.get("/readyz").json())["checks"]["backend"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


@pytest.mark.django_db
def test_readyz_answers_while_the_backend_probe_is_still_outstanding(
    client, held_server, monkeypatch
):
    monkeypatch.setattr("webapp.health.PROBE_TIMEOUT", 30.0)
    ModelEndpointFactory(model=LanguageModelFactory(backend="tgi"), url="http://127.0.0.1:9/")
    ModelEndpointFactory(model=LanguageModelFactory(backend="openai"), url=held_server.url)

    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["backend"] is False

    # Only the probe started by that request can be answered: the server takes one connection.
    assert held_server.connected.wait(5)
    held_server.release.set()
    assert wait_for_backend(client)["status"] == "ok"


@pytest.mark.django_db
def test_an_invalid_endpoint_url_reads_as_unhealthy_not_as_a_server_error(client):
    ModelEndpointFactory(model=LanguageModelFactory(backend="openai"), url="http://a..b")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["backend"] is False


def test_an_invalid_url_fails_the_probe_instead_of_raising():
    assert endpoint_probe(kind="openai", url="http://a..b", timeout=1) is False


@pytest.mark.parametrize("kind", ["tgi", "openai"])
def test_the_probe_says_a_running_server_is_healthy(inference, kind):
    assert endpoint_probe(kind=kind, url=inference.url, timeout=5) is True


def test_the_probe_accepts_an_openai_url_that_ends_in_v1(inference):
    assert endpoint_probe(kind="openai", url=f"{inference.url}/v1/", timeout=5) is True


@pytest.mark.parametrize("kind", ["tgi", "openai"])
def test_the_probe_says_a_dead_port_is_unhealthy(kind):
    assert endpoint_probe(kind=kind, url=f"http://127.0.0.1:{free_port()}", timeout=5) is False


def test_the_probe_sends_the_api_key_as_a_bearer_token(held_server):
    held_server.release.set()
    assert endpoint_probe(kind="tgi", url=held_server.url, api_key="sk-probe", timeout=5)
    assert b"/health " in held_server.request
    assert b"authorization: bearer sk-probe" in held_server.request.lower()
