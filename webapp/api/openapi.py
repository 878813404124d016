"""The OpenAPI 3 document of ``/v1``, served at ``/v1/openapi.json``.

Written by hand next to the views it describes (``parse.py`` holds the same
fields and ranges); the fuzzing test in tests/test_api_openapi.py runs
against it, so a field added to one and not the other shows up there.
"""

from __future__ import annotations

from typing import Any

from inference.params import MAX_ALTERNATIVES, MAX_STOP_SEQUENCES

from .parse import MAX_MODEL_NAME

ERRORS = {
    "400": "Bad parameters: `error.param` names the one at fault.",
    "401": "No personal token, or one that is not valid, expired or revoked, or the "
    "account behind it is deactivated.",
    "403": "The token lacks the scope, or its user may not use the model through the API "
    "(a gated model: the message says where to apply for the `api` level).",
    "404": "No such model.",
    "429": "A limit of the account, or the model's servers are busy: see `Retry-After`.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: str) -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("Error")}}
    return {status: {"description": ERRORS[status], "content": error} for status in statuses}


_SAMPLING: dict[str, Any] = {
    "max_tokens": {"type": "integer", "minimum": 1, "description": "Tokens to generate at most."},
    "max_completion_tokens": {"type": "integer", "minimum": 1},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 1},
    "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
    "seed": {"type": "integer", "minimum": 0},
    "stop": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "maxItems": MAX_STOP_SEQUENCES,
            },
        ]
    },
    "stream": {"type": "boolean", "default": False},
    "stream_options": {
        "type": "object",
        "properties": {"include_usage": {"type": "boolean"}},
        "additionalProperties": False,
        "description": "Only with `stream: true`.",
    },
    "n": {"type": "integer", "enum": [1]},
    "frequency_penalty": {"type": "number", "enum": [0]},
    "presence_penalty": {"type": "number", "enum": [0]},
    "user": {"type": "string"},
}


def _request(extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["model", *required],
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME},
            **_SAMPLING,
            **extra,
        },
        "additionalProperties": False,
    }


_USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("prompt_tokens", "completion_tokens", "total_tokens")
    },
}
_FINISH = {"type": "string", "enum": ["stop", "length"]}
_HEAD = {
    "id": {"type": "string"},
    "created": {"type": "integer"},
    "model": {"type": "string"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string", "description": "The model's slug: what `model` takes."},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "name": {"type": "string"},
            "context_length": {"type": "integer"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("Model")},
        },
    },
    "Message": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
            "content": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {
                                "type": {"type": "string", "enum": ["text"]},
                                "text": {"type": "string"},
                            },
                        },
                    },
                ]
            },
        },
    },
    "ChatCompletionRequest": _request(
        {"messages": {"type": "array", "minItems": 1, "items": _ref("Message")}}, ["messages"]
    ),
    "CompletionRequest": _request(
        {
            "prompt": {"type": "string", "minLength": 1},
            "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
            "presence_penalty": {
                "type": "number",
                "minimum": -2,
                "maximum": 2,
                "description": "OpenAI-protocol models only (TGI takes only 0).",
            },
            "logprobs": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_ALTERNATIVES,
                "description": "Each token's log probability, with this many alternatives.",
            },
        },
        ["prompt"],
    ),
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            **_HEAD,
            "object": {"type": "string", "enum": ["chat.completion"]},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {
                            "type": "object",
                            "required": ["role", "content"],
                            "properties": {
                                "role": {"type": "string", "enum": ["assistant"]},
                                "content": {"type": "string"},
                            },
                        },
                        "finish_reason": _FINISH,
                    },
                },
            },
            "usage": _USAGE,
        },
    },
    "Completion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            **_HEAD,
            "object": {"type": "string", "enum": ["text_completion"]},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "text", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "text": {"type": "string"},
                        "finish_reason": _FINISH,
                    },
                },
            },
            "usage": _USAGE,
        },
    },
}

_STREAM = {
    "text/event-stream": {
        "schema": {
            "type": "string",
            "description": "With `stream: true`: `data: {chunk}` events, then `data: [DONE]`.",
        }
    }
}


def _generation(summary: str, request: str, reply: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            },
            "responses": {
                "200": {
                    "description": "The reply, whole or (`stream: true`) as server-sent events.",
                    "content": {"application/json": {"schema": _ref(reply)}, **_STREAM},
                },
                **_errors("400", "401", "403", "404", "429"),
            },
        }
    }


def document(*, server: str) -> dict[str, Any]:
    """Return the OpenAPI document, its server being this site's ``/v1``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse OpenAI-compatible API",
            "version": "1",
            "description": "The models, chat completions and completions of OpenAI's API, "
            "for personal tokens (`gh_…`, scopes `models`, `chat`, `completions`).",
        },
        "servers": [{"url": server}],
        "paths": {
            "/models": {
                "get": {
                    "summary": "List the models the token's user may use through the API",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "The models.",
                            "content": {"application/json": {"schema": _ref("ModelList")}},
                        },
                        **_errors("401", "403"),
                    },
                }
            },
            "/models/{model}": {
                "get": {
                    "summary": "Describe one model",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "model",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The model.",
                            "content": {"application/json": {"schema": _ref("Model")}},
                        },
                        **_errors("401", "403", "404"),
                    },
                }
            },
            "/chat/completions": _generation(
                "Answer a list of messages", "ChatCompletionRequest", "ChatCompletion"
            ),
            "/completions": _generation("Continue a prompt", "CompletionRequest", "Completion"),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }
