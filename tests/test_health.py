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


class RedirectingServer:
    """A loopback server that answers every request with a redirect to ``location``."""

    def __init__(self, location: str) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._location = location.encode()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        self._listener.close()
        with conn:
            conn.recv(4096)
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: " + self._location + b"\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )


INVALID_URLS = ["http://a..b", "http://", "ftp://x", "http://a b/", "http://[::1", "no url"]
KEY = "sk-readyz-9b27c0d4"


@pytest.fixture
def thread_errors(monkeypatch) -> list[BaseException | None]:
    errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    return errors


def readyz_after_the_probes(client) -> tuple[int, str]:
    """Ask /readyz, let the probes it started finish, and ask again."""
    before = set(threading.enumerate())
    client.get("/readyz")
    for thread in set(threading.enumerate()) - before:
        thread.join(10)
    time.sleep(0.3)  # past READYZ_PROBE_INTERVAL: the next request starts fresh probes
    response = client.get("/readyz")
    return response.status_code, response.content.decode()


@pytest.mark.parametrize("url", INVALID_URLS)
def test_an_invalid_endpoint_url_fails_its_probe_without_raising(url):
    assert endpoint_probe(kind="tgi", url=url, api_key=KEY, timeout=1) is False


@pytest.mark.django_db
def test_invalid_endpoints_read_as_unhealthy_and_the_answer_names_no_url_or_key(
    client, settings, thread_errors
):
    settings.DEBUG = True  # the 500 page under DEBUG is what showed the Authorization header
    for url in [*INVALID_URLS, "http://probe:pw-in-url@127.0.0.1:9/"]:
        model = LanguageModelFactory(backend="openai")
        ModelEndpointFactory(model=model, url=url, api_key=KEY)

    status, body = readyz_after_the_probes(client)

    assert status == 503
    assert thread_errors == []
    assert KEY not in body and "pw-in-url" not in body and "Bearer" not in body
    assert not any(url in body for url in INVALID_URLS if url != "http://")
    assert "127.0.0.1" not in body


@pytest.mark.django_db
def test_a_backend_kind_the_probe_does_not_know_reads_as_unhealthy(client, thread_errors):
    ModelEndpointFactory(model=LanguageModelFactory(backend="grpc"), api_key=KEY)
    status, body = readyz_after_the_probes(client)
    assert status == 503 and KEY not in body
    assert thread_errors == []


@pytest.mark.django_db
def test_a_probe_that_fails_unexpectedly_reads_as_unhealthy(client, monkeypatch, thread_errors):
    def broken_probe(**kwargs):
        raise RuntimeError(f"unexpected, with {kwargs['api_key']}")

    monkeypatch.setattr("webapp.health.endpoint_probe", broken_probe)
    ModelEndpointFactory(model=LanguageModelFactory(), api_key=KEY)
    status, body = readyz_after_the_probes(client)
    assert status == 503 and KEY not in body
    assert thread_errors == []


@pytest.mark.django_db
def test_readyz_answers_when_no_probe_thread_can_start(client, monkeypatch):
    ModelEndpointFactory(model=LanguageModelFactory())

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", no_thread)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["backend"] is False


@pytest.mark.parametrize("api_key", ["sk\r\nX-Injected: 1", "sk-é"])
def test_a_key_that_cannot_be_a_header_fails_the_probe_without_raising(held_server, api_key):
    held_server.release.set()
    assert endpoint_probe(kind="tgi", url=held_server.url, api_key=api_key, timeout=2) is False
    assert b"X-Injected" not in held_server.request


def test_the_probe_never_follows_a_redirect_with_the_key(held_server):
    held_server.release.set()
    redirecting = RedirectingServer(location=f"{held_server.url}/health")
    assert endpoint_probe(kind="tgi", url=redirecting.url, api_key=KEY, timeout=2) is False
    assert not held_server.connected.wait(0.5)
