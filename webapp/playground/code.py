"""The playground's request as code: curl and the ``openai`` SDK against Gatehouse's own
``/v1/completions``, and the backend's own client (``text-generation`` for TGI).

Built from the parameters as checked for the model (``playground_params``), so the
code sends what the playground sends.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from inference.params import params_parse, params_to_openai, params_to_tgi
from webapp.catalog.models import LanguageModel

TOKEN_PLACEHOLDER = "gh_..."  # noqa: S105 (a placeholder for a personal token)
SERVER_KEY_PLACEHOLDER = "<server API key>"  # shown, never the key itself
# What /v1/completions takes, by Gatehouse's name -> OpenAI's name.
API_FIELDS = {
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "stop": "stop",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "logprobs": "logprobs",
}
# Fields the openai SDK's completions.create names itself; the rest go in extra_body.
SDK_ARGUMENTS = {
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
}
# TGI's token details, which /v1/completions asks for as ``logprobs`` (the alternatives).
TOKEN_DETAILS = ("top_n_tokens", "details")


@dataclass(frozen=True)
class Snippets:
    curl: str
    openai: str
    backend: str
    backend_title: str
    left_out: list[str]  # parameters /v1/completions does not take (the backend's own)


def code_snippets(
    *,
    model: LanguageModel,
    prompt: str,
    params: dict[str, Any],
    api_base: str,
    backend_url: str,
    backend_keyed: bool = False,
) -> Snippets:
    """Return the request of ``prompt`` with the checked ``params`` in three forms."""
    parsed = params_parse(params, backend=model.backend, completion=True)  # type: ignore[arg-type]
    body = {"model": model.slug, "prompt": prompt}
    api = {API_FIELDS[k]: v for k, v in params.items() if k in API_FIELDS}
    if parsed.alternatives is not None:
        api["logprobs"] = parsed.alternatives
    left_out = sorted(k for k in params if k not in API_FIELDS and k not in TOKEN_DETAILS)
    curl = _curl(api_base, {**body, **api, "stream": True})
    openai = _openai(api_base, model.slug, prompt, api)
    if model.backend == "tgi":
        return Snippets(
            curl,
            openai,
            _tgi(backend_url, prompt, parsed, keyed=backend_keyed),
            "text-generation",
            left_out,
        )
    direct = params_to_openai(parsed, completion=True)
    name = model.backend_model or "default"
    key = SERVER_KEY_PLACEHOLDER if backend_keyed else "EMPTY"
    backend = _openai(backend_url.rstrip("/") + "/v1", name, prompt, direct, key=key)
    return Snippets(curl, openai, backend, "openai, against the server itself", left_out)


def _curl(api_base: str, body: dict[str, Any]) -> str:
    return (
        f"curl -N {shlex.quote(api_base + '/completions')} \\\n"
        f'  -H "Authorization: Bearer {TOKEN_PLACEHOLDER}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(json.dumps(body, indent=2, ensure_ascii=False))}"
    )


def _openai(base: str, model: str, prompt: str, fields: dict[str, Any], key: str = "") -> str:
    named = {k: v for k, v in fields.items() if k in SDK_ARGUMENTS}
    extra = {k: v for k, v in fields.items() if k not in SDK_ARGUMENTS}
    arguments = [f"model={model!r}", f"prompt={prompt!r}", *_keywords(named), "stream=True"]
    if extra:
        arguments.append(f"extra_body={extra!r}")
    return "\n".join(
        [
            "from openai import OpenAI",
            "",
            f"client = OpenAI(base_url={base!r}, api_key={(key or TOKEN_PLACEHOLDER)!r})",
            "stream = client.completions.create(",
            *(f"    {argument}," for argument in arguments),
            ")",
            "for chunk in stream:",
            '    print(chunk.choices[0].text, end="", flush=True)',
        ]
    )


def _tgi(url: str, prompt: str, params: Any, *, keyed: bool) -> str:
    kwargs = params_to_tgi(params)
    caveat = []
    if kwargs.get("frequency_penalty", 1) <= 0:
        caveat = [
            "# text-generation 0.7 refuses a frequency_penalty at or below 0, which TGI takes",
            "# (-2 to 2): send that one in the JSON body of POST /generate_stream instead.",
        ]
    return "\n".join(
        [
            *caveat,
            "from text_generation import Client",
            "",
            f"client = Client({url!r}, {_headers(keyed)}timeout=600)",
            "for response in client.generate_stream(",
            f"    {prompt!r},",
            *(f"    {keyword}," for keyword in _keywords(kwargs)),
            "):",
            "    if not response.token.special:",
            '        print(response.token.text, end="", flush=True)',
        ]
    )


def _headers(keyed: bool) -> str:
    if not keyed:
        return ""
    return f"headers={ {'Authorization': f'Bearer {SERVER_KEY_PLACEHOLDER}'}!r}, "


def _keywords(values: dict[str, Any]) -> list[str]:
    return [f"{name}={value!r}" for name, value in values.items()]
