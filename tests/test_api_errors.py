"""An error nobody foresaw still answers in OpenAI's shape, logged with its traceback: a 500
before the answer begins, an error event and ``[DONE]`` once a stream has begun."""

from __future__ import annotations

import json
import logging

import pytest

from webapp.api import calls, views
from webapp.api.parse import Call

BEARER = {"headers": {"Authorization": "Bearer gh_" + "x" * 40}}
# No database work is expected, but the views give their thread's connection back to the
# pool, which touches one that an earlier test left open there.
pytestmark = pytest.mark.django_db(transaction=True)

HELLO = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def broken(**kwargs):
    raise RuntimeError("a fault nobody foresaw")


def server_error(response) -> dict:
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = json.loads(response.content)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    return error


def assert_logged_with_traceback(caplog) -> None:
    failures = [r for r in caplog.records if r.name == "webapp.api.views"]
    assert failures and failures[-1].levelno == logging.ERROR
    assert "a fault nobody foresaw" in str(failures[-1].exc_info[1])


@pytest.mark.parametrize(
    ("service", "method", "path", "body"),
    [
        ("api_models", "get", "/v1/models", None),
        ("api_model", "get", "/v1/models/m", None),
        ("api_call_start", "post", "/v1/chat/completions", HELLO),
        ("api_call_start", "post", "/v1/completions", {"model": "m", "prompt": "Hi"}),
    ],
)
async def test_an_unexpected_error_is_a_500_in_openais_shape_and_logged(
    async_client, monkeypatch, caplog, service, method, path, body
):
    monkeypatch.setattr(calls, service, broken)
    send = getattr(async_client, method)
    extra = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    response = await send(path, **extra, **BEARER)
    error = server_error(response)
    assert "a fault nobody foresaw" not in error["message"]  # the details stay in the log
    assert_logged_with_traceback(caplog)


async def test_an_unexpected_error_mid_stream_ends_it_with_an_error_event(
    async_client, monkeypatch, caplog
):
    started = calls.Started("0" * 32, "group", None, "m")
    call = Call(model="m", stream=True, include_usage=False, raw={})
    stopped = []

    async def events():
        yield {"type": "chunk", "text": "Hel"}
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(calls, "api_call_start", lambda **kwargs: (call, started))
    monkeypatch.setattr(calls, "api_call_stop", lambda started: stopped.append(started))
    monkeypatch.setattr(views, "_events", lambda started: events())
    response = await async_client.post(
        "/v1/chat/completions", json.dumps(HELLO), content_type="application/json", **BEARER
    )
    assert response.status_code == 200
    frames = [frame async for frame in response.streaming_content]
    data = [json.loads(f[6:]) for f in b"".join(frames).decode().split("\n\n")[:-2] if f]
    assert data[1]["choices"][0]["delta"]["content"] == "Hel"
    assert data[-1]["error"]["code"] == "internal_error"
    assert b"".join(frames).endswith(b"data: [DONE]\n\n")
    assert stopped == [started]  # the generation is stopped at the inference server
    assert_logged_with_traceback(caplog)
