"""The same fault gives the same error code, and a detail with the server's own reason,
whichever protocol the model server speaks: each fault is driven through both backends
against the scripted server on loopback (docs/protocol.md lists the codes)."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pytest

from inference.backends import BackendError, ChatMessage, Endpoint, Timeouts, Token, backend_for
from inference.params import SamplingParams
from tests.inference_server import ScriptedServer
from tests.services import free_port

BACKENDS = ["openai", "tgi"]
MESSAGES: list[ChatMessage] = [{"role": "user", "content": "Hi"}]
PROXY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class Fault:
    name: str
    script: dict[str, Any] | None  # None: nothing listens on the port
    code: str
    says: tuple[str, ...]  # what the detail tells, the server's reason and the advice
    streamed: str = ""  # the text that arrived before the fault


FAULTS = [
    Fault(
        "connection-refused",
        None,
        "backend_unavailable",
        ("not reachable", "connection refused", "try again"),
    ),
    Fault(
        "500",
        {"status": 500, "error": "CUDA out of memory"},
        "backend_unavailable",
        ("HTTP 500: CUDA out of memory", "try again"),
    ),
    Fault(
        "502-proxy-page",
        {"status": 502, "raw_body": PROXY_PAGE},
        "backend_unavailable",
        ("HTTP 502: 502 Bad Gateway", "try again"),
    ),
    Fault(
        "503",
        {"status": 503, "error": "Model is loading"},
        "backend_unavailable",
        ("HTTP 503: Model is loading", "try again"),
    ),
    Fault(
        "429",
        {"status": 429, "error": "Rate limit reached for requests"},
        "backend_overloaded",
        ("busy", "Rate limit reached for requests", "try again"),
    ),
    Fault(
        "400-openai-body",
        {
            "status": 400,
            "json_body": {
                "error": {
                    "message": "This model's maximum context length is 4096 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        },
        "backend_rejected",
        ("rejected", "HTTP 400: This model's maximum context length is 4096 tokens.", "change"),
    ),
    Fault(
        "422-tgi-body",
        {
            "status": 422,
            "json_body": {
                "error": "Input validation error: `temperature` must be strictly positive",
                "error_type": "validation",
            },
        },
        "backend_rejected",
        ("rejected", "HTTP 422: Input validation error: `temperature` must be strictly positive"),
    ),
    Fault(
        "422-plain-text",
        {"status": 422, "raw_body": "Failed to deserialize the JSON body: missing field `content`"},
        "backend_rejected",
        ("rejected", "missing field `content`"),
    ),
    Fault(
        "422-fastapi-body",
        {
            "status": 422,
            "json_body": {
                "detail": [
                    {
                        "loc": ["body", "max_tokens"],
                        "msg": "Input should be greater than 0",
                        "type": "greater_than",
                    }
                ]
            },
        },
        "backend_rejected",
        ("rejected", "max_tokens: Input should be greater than 0"),
    ),
    Fault(
        "401",
        {"status": 401, "error": "Invalid API key"},
        "backend_unavailable",
        ("credentials", "HTTP 401: Invalid API key", "administrator"),
    ),
    Fault(
        "404",
        {"status": 404, "error": "Model not found"},
        "backend_unavailable",
        ("HTTP 404: Model not found", "administrator"),
    ),
    Fault(
        "error-event-mid-stream",
        {"tokens": ["One", " two", " three"], "fail_after": 2, "error": "CUDA error: illegal"},
        "backend_failed",
        ("while answering (CUDA error: illegal)", "text so far is kept", "try again"),
        streamed="One two",
    ),
    Fault(
        "overloaded-event",  # how TGI tells a full queue on /generate_stream
        {"fail_after": 0, "error": "Model is overloaded", "error_type": "overloaded"},
        "backend_overloaded",
        ("busy", "Model is overloaded", "try again"),
    ),
    Fault(
        "validation-event",  # how TGI refuses a request on /generate_stream
        {"fail_after": 0, "error": "Input validation error: bad", "error_type": "validation"},
        "backend_rejected",
        ("rejected", "Input validation error: bad"),
    ),
    Fault(
        "connection-dropped-mid-stream",
        {"tokens": ["One", " two", " three"], "drop_after": 2},
        "backend_failed",
        ("broke off while answering", "text so far is kept", "try again"),
        streamed="One two",
    ),
]


def reply(backend: str, url: str, max_new_tokens: int = 64):
    """Return the events of one reply, streamed by ``backend``'s client from ``url``."""
    endpoint = Endpoint(kind=backend, url=url, model="scripted")
    events = backend_for(endpoint, timeouts=Timeouts(connect=2.0, total=20.0)).stream(
        MESSAGES, SamplingParams(max_new_tokens=max_new_tokens)
    )
    return aclosing(events)


async def stream_until_the_fault(backend: str, url: str) -> tuple[str, BackendError]:
    """Stream a reply; return the text that arrived and the error that ended it."""
    text = []
    async with reply(backend, url) as events:
        try:
            async for event in events:
                if isinstance(event, Token):
                    text.append(event.text)
        except BackendError as exc:
            return "".join(text), exc
    pytest.fail(f"the {backend} stream ended without an error")


async def run(fault: Fault, backend: str, server: ScriptedServer) -> tuple[str, BackendError]:
    if fault.script is None:
        return await stream_until_the_fault(backend, f"http://127.0.0.1:{free_port()}")
    server.push(fault.script)
    return await stream_until_the_fault(backend, server.url)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
async def test_a_fault_gives_its_code_and_the_servers_reason(inference, fault, backend):
    streamed, error = await run(fault, backend, inference)

    assert error.code == fault.code
    for words in fault.says:
        assert words.lower() in error.detail.lower()
    assert error.detail.endswith(".")
    assert streamed == fault.streamed


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
async def test_both_backends_tell_a_fault_in_the_same_words(inference, fault):
    _, openai_error = await run(fault, "openai", inference)
    _, tgi_error = await run(fault, "tgi", inference)
    assert (tgi_error.code, tgi_error.detail) == (openai_error.code, openai_error.detail)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_server_killed_mid_stream_fails_the_reply_and_keeps_its_text(backend):
    text: list[str] = []
    with ScriptedServer() as server:
        server.push({"n_tokens": 400, "rate": 20})
        async with reply(backend, server.url, max_new_tokens=400) as events:
            with pytest.raises(BackendError) as raised:
                async for event in events:
                    if isinstance(event, Token):
                        text.append(event.text)
                        if len(text) == 2:
                            server.kill()

    assert raised.value.code == "backend_failed"
    assert "broke off while answering" in raised.value.detail
    assert "".join(text).startswith(" tok0 tok1")
    assert len(text) < 400
