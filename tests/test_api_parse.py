"""The /v1 request bodies, checked field by field, and OpenAI's error shape: no services."""

from __future__ import annotations

import pytest

from webapp.api.errors import ApiError, generation_failure
from webapp.api.parse import body_parse, chat_parse, completion_parse, sampling_parse

HELLO = [{"role": "user", "content": "Hi"}]


def refusal(parse, data) -> ApiError:
    with pytest.raises(ApiError) as refused:
        parse(data)
    assert refused.value.status == 400
    return refused.value


def test_a_chat_body_keeps_the_messages_text_and_the_sampling_fields_as_sent():
    call = chat_parse(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                },
            ],
            "temperature": 0.2,
            "max_completion_tokens": 9,
            "n": 1,
            "frequency_penalty": 0,
            "user": "someone",
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert call.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
    ]
    assert call.raw == {"temperature": 0.2, "max_completion_tokens": 9}
    assert call.stream and call.include_usage


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
        ),
        ({"model": "m", "messages": HELLO, "stream": "yes"}, "stream"),
        (
            {"model": "m", "messages": HELLO, "stream_options": {"include_usage": True}},
            "stream_options",
        ),
        ({"model": "m", "messages": HELLO, "n": 3}, "n"),
        ({"model": "m", "messages": HELLO, "n": True}, "n"),
        ({"model": "m", "messages": HELLO, "logprobs": True}, "logprobs"),
        ({"model": "m", "messages": HELLO, "tools": [{"type": "function"}]}, "tools"),
        ({"model": "m", "messages": HELLO, "colour": "red"}, "colour"),
        (
            {"model": "m", "messages": HELLO, "max_tokens": 3, "max_completion_tokens": 3},
            "max_completion_tokens",
        ),
    ],
)
def test_a_bad_chat_body_is_refused_naming_the_field(data, param):
    assert refusal(chat_parse, data).param == param


def test_text_the_database_cannot_hold_is_refused_wherever_it_is_in_the_body():
    for body in (
        b'{"model": "m", "messages": [{"role": "user", "content": "a\\u0000b"}]}',
        b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "m\\u0000", "messages": []}',
        b'{"model": "m", "stop": ["\\udfff"]}',
        b'{"\\u0000": 1}',
    ):
        with pytest.raises(ApiError) as refused:
            body_parse(body)
        assert refused.value.status == 400, body
    assert body_parse(b'{"text": "a literal \\\\u0000 is text"}')


def test_a_body_that_is_not_a_json_object_is_refused():
    for body in (b"", b"[1]", b"{nope", b"[" * 100_000):
        with pytest.raises(ApiError):
            body_parse(body)


def test_a_completion_takes_one_prompt_as_a_string_or_a_one_item_list():
    assert completion_parse({"model": "m", "prompt": ["Once"]}).prompt == "Once"
    assert refusal(completion_parse, {"model": "m", "prompt": ["a", "b"]}).param == "prompt"
    assert refusal(completion_parse, {"model": "m", "messages": HELLO}).param == "messages"


@pytest.mark.parametrize(
    ("raw", "backend", "param", "words"),
    [
        ({"temperature": 2.5}, "openai", "temperature", "at most 2"),
        ({"temperature": 0}, "tgi", "temperature", "greater than 0"),
        ({"top_p": 1.0}, "tgi", "top_p", "less than 1"),
        ({"max_tokens": 4096}, "openai", "max_tokens", "context length"),
        ({"max_completion_tokens": 0}, "openai", "max_completion_tokens", "at least 1"),
        ({"seed": -1}, "openai", "seed", "at least 0"),
        ({"top_k": 1.5}, "openai", "top_k", "whole number"),
        ({"stop": [""]}, "openai", "stop", "non-empty"),
    ],
)
def test_sampling_fields_are_checked_against_the_models_backend_by_their_openai_name(
    raw, backend, param, words
):
    with pytest.raises(ApiError) as refused:
        sampling_parse(raw, backend=backend, context_length=4096)
    assert refused.value.param == param and words in refused.value.message
    assert refused.value.message.startswith(param)


def test_sampling_fields_come_out_under_gatehouses_names():
    raw = {"max_tokens": 5, "temperature": 0, "stop": "END", "seed": 1}
    assert sampling_parse(raw, backend="openai", context_length=4096) == {
        "max_new_tokens": 5,
        "temperature": 0,
        "stop": "END",
        "seed": 1,
    }


def test_a_busy_backend_is_a_429_with_retry_after_and_other_faults_are_the_servers():
    busy = generation_failure({"code": "backend_overloaded", "detail": "Too busy."})
    assert busy.status == 429 and busy.response()["Retry-After"]
    assert busy.body() == {
        "error": {
            "message": "Too busy.",
            "type": "rate_limit_error",
            "param": None,
            "code": "backend_overloaded",
        }
    }
    assert generation_failure({"code": "backend_failed", "detail": "Broke off."}).status == 502
    assert generation_failure(None).status == 502
