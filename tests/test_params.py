"""Sampling parameters are checked against each backend's ranges before anything is sent."""

from __future__ import annotations

import pytest

from inference.params import (
    ParamsError,
    params_controls,
    params_parse,
    params_to_openai,
    params_to_tgi,
)


@pytest.mark.parametrize(
    ("backend", "params", "message"),
    [
        ("tgi", {"temperature": 0}, "temperature must be greater than 0"),
        ("tgi", {"top_p": 1.0}, "top_p must be greater than 0 and less than 1"),
        ("openai", {"temperature": 2.5}, "temperature must be at least 0 and at most 2"),
        ("openai", {"max_new_tokens": 0}, "max_new_tokens must be at least 1"),
        ("tgi", {"max_new_tokens": 1.5}, "max_new_tokens must be a whole number"),
        ("tgi", {"top_k": True}, "top_k must be a number"),
        ("tgi", {"temperature": float("nan")}, "temperature must be a finite number"),
        ("openai", {"stop": ["a", "b", "c", "d", "e"]}, "stop takes at most 4 sequences"),
        ("openai", {"stop": [""]}, "stop must be a list of non-empty strings"),
        ("openai", {"beam_width": 3}, "Unknown sampling parameter(s): beam_width"),
    ],
)
def test_out_of_range_parameters_are_refused_with_a_clear_reason(backend, params, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        params_parse(params, backend=backend)


def test_temperature_zero_and_top_p_one_are_fine_for_openai_servers():
    params = params_parse({"temperature": 0, "top_p": 1.0}, backend="openai")
    assert (params.temperature, params.top_p) == (0.0, 1.0)


def test_max_new_tokens_must_fit_the_context():
    with pytest.raises(ParamsError, match="context length"):
        params_parse({"max_new_tokens": 4096}, backend="tgi", context_length=4096)


def test_parameters_map_to_each_protocol():
    params = params_parse(
        {"max_new_tokens": 10, "temperature": 0.5, "top_k": 40, "stop": "###"}, backend="tgi"
    )
    assert params_to_tgi(params) == {
        "max_new_tokens": 10,
        "do_sample": True,
        "stop_sequences": ["###"],
        "temperature": 0.5,
        "top_k": 40,
    }
    assert params_to_openai(params) == {
        "max_tokens": 10,
        "temperature": 0.5,
        "stop": ["###"],
        "top_k": 40,  # not OpenAI's, but vLLM and llama.cpp read it from the same body
    }
    assert params.as_dict() == {
        "max_new_tokens": 10,
        "temperature": 0.5,
        "top_k": 40,
        "stop": ["###"],
    }


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_every_controls_bounds_are_accepted_and_one_step_beyond_is_refused(backend):
    for control in params_controls(backend, context_length=4096):
        for bound, outside in ((control.min, -control.step), (control.max, control.step)):
            if bound is None:
                continue
            params_parse({control.name: bound}, backend=backend, context_length=4096)
            with pytest.raises(ParamsError):
                params_parse(
                    {control.name: round(bound + outside, 6)}, backend=backend, context_length=4096
                )


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_every_completion_controls_bounds_are_accepted_and_one_step_beyond_is_refused(backend):
    for control in params_controls(backend, context_length=4096, completion=True):
        for bound, outside in ((control.min, -control.step), (control.max, control.step)):
            if bound is None:
                continue
            params_parse(
                {control.name: bound}, backend=backend, context_length=4096, completion=True
            )
            with pytest.raises(ParamsError):
                params_parse(
                    {control.name: round(bound + outside, 6)},
                    backend=backend,
                    context_length=4096,
                    completion=True,
                )


@pytest.mark.parametrize(
    ("backend", "params", "message"),
    [
        ("tgi", {"typical_p": 1.0}, "typical_p must be greater than 0 and less than 1"),
        ("tgi", {"frequency_penalty": -2.5}, "frequency_penalty must be at least -2"),
        ("tgi", {"top_n_tokens": 6}, "top_n_tokens must be at least 0 and at most 5"),
        ("tgi", {"truncate": 4096}, "truncate must be below the model's context length"),
        ("tgi", {"watermark": "yes"}, "watermark must be true or false"),
        ("tgi", {"grammar": {"type": "xml", "value": "<a/>"}}, 'grammar type must be "json"'),
        ("tgi", {"grammar": {"type": "regex", "value": "(a"}}, "the regex is not valid"),
        ("tgi", {"grammar": {"type": "json", "value": "{oops"}}, "not valid JSON"),
        ("tgi", {"grammar": {"type": "json", "value": []}}, "a non-empty JSON object"),
        ("tgi", {"logprobs": 2}, "Unknown sampling parameter(s): logprobs"),
        ("openai", {"logprobs": 6}, "logprobs must be at least 0 and at most 5"),
        (
            "openai",
            {"presence_penalty": 2.01},
            "presence_penalty must be at least -2 and at most 2",
        ),
        ("openai", {"grammar": {"type": "regex", "value": "a"}}, "Unknown sampling parameter"),
        ("openai", {"stop": ["a", "b", "c", "d", "e"]}, "stop takes at most 4 sequences"),
    ],
)
def test_out_of_range_completion_parameters_are_refused_with_a_clear_reason(
    backend, params, message
):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        params_parse(params, backend=backend, context_length=4096, completion=True)


def test_the_chat_set_does_not_take_completion_parameters():
    with pytest.raises(ParamsError, match="Unknown sampling parameter"):
        params_parse({"top_n_tokens": 2}, backend="tgi")


def test_completion_parameters_map_to_each_protocol():
    tgi = params_parse(
        {
            "do_sample": False,
            "temperature": 0.8,
            "typical_p": 0.5,
            "frequency_penalty": -1.0,
            "top_n_tokens": 3,
            "details": True,
            "watermark": True,
            "truncate": 100,
            "grammar": {"type": "json", "value": '{"type": "object"}'},
        },
        backend="tgi",
        completion=True,
    )
    assert params_to_tgi(tgi) == {
        "max_new_tokens": 512,
        "do_sample": False,  # as asked, though temperature alone would turn it on
        "stop_sequences": [],
        "temperature": 0.8,
        "typical_p": 0.5,
        "frequency_penalty": -1.0,
        "truncate": 100,
        "watermark": True,
        "grammar": {"type": "json", "value": {"type": "object"}},
        "top_n_tokens": 3,
    }
    assert tgi.alternatives == 3
    openai = params_parse(
        {"max_new_tokens": 8, "presence_penalty": 0.5, "logprobs": 0},
        backend="openai",
        completion=True,
    )
    assert params_to_openai(openai, completion=True) == {
        "max_tokens": 8,
        "presence_penalty": 0.5,
        "logprobs": 0,
    }
    assert openai.alternatives == 0  # each token's own logprob, no alternatives
    assert params_parse({}, backend="openai", completion=True).alternatives is None
    assert params_parse(tgi.as_dict(), backend="tgi", completion=True) == tgi  # saved, read back


HUGE = 10**400  # a JSON integer no float holds


@pytest.mark.parametrize(
    ("backend", "params", "message"),
    [
        ("tgi", {"temperature": HUGE}, "temperature must be at most 9223372036854775807"),
        ("tgi", {"max_new_tokens": HUGE}, "max_new_tokens must be at most 9223372036854775807"),
        ("tgi", {"seed": 2**64}, "seed must be at most 9223372036854775807"),
        ("tgi", {"top_k": -HUGE}, "top_k must be at least 1"),
        ("openai", {"temperature": HUGE}, "temperature must be at least 0 and at most 2"),
        ("openai", {"max_new_tokens": HUGE}, "max_new_tokens must be at most"),
        ("openai", {"logprobs": HUGE}, "logprobs must be at least 0 and at most 5"),
    ],
)
def test_a_number_too_large_for_any_backend_is_refused_naming_the_parameter(
    backend, params, message
):
    with pytest.raises(ParamsError, match=message):
        params_parse(params, backend=backend, completion=True)


def test_a_huge_number_is_refused_before_the_context_length_is_compared():
    with pytest.raises(ParamsError, match="max_new_tokens must be at most"):
        params_parse({"max_new_tokens": HUGE}, backend="tgi", context_length=4096)
