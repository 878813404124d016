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
