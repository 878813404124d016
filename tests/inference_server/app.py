"""The Starlette application: both inference protocols plus the /_control API."""

from __future__ import annotations

from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import completions, openai_api, tgi
from .engine import read_json
from .scripts import Script, ScriptError
from .state import GENERATION, HANGING, META, SERVED, Record, ServerState

MAX_WAIT = 120.0


def _state(request: Request) -> ServerState:
    return request.app.state.server


# -- inference endpoints -------------------------------------------------------


async def health(request: Request) -> Response:
    return Response(status_code=200)


async def info(request: Request) -> Response:
    state = _state(request)
    record = state.new_record(request.url.path, None, kind=META, protocol="tgi")
    state.finish(record, SERVED, status=200)
    return JSONResponse(tgi.info(state.max_concurrent_requests))


async def models(request: Request) -> Response:
    state = _state(request)
    record = state.new_record(request.url.path, None, kind=META, protocol="openai")
    state.finish(record, SERVED, status=200)
    return JSONResponse(openai_api.models())


# -- control API ---------------------------------------------------------------


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def push_scripts(request: Request) -> Response:
    body, error = await read_json(request)
    if error is not None:
        return _bad(f"invalid JSON: {error}")
    items = body.get("scripts") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return _bad('expected {"scripts": [script, ...]}')
    try:
        scripts = [Script.from_json(item) for item in items]
    except ScriptError as exc:
        return _bad(str(exc))
    state = _state(request)
    state.queue.extend(scripts)
    return JSONResponse({"queued": len(state.queue)})


async def get_scripts(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(
        {
            "queued": [s.to_json() for s in state.queue],
            "default": None if state.default is None else state.default.to_json(),
            "in_flight": state.in_flight,
        }
    )


async def set_default(request: Request) -> Response:
    body, error = await read_json(request)
    if error is not None:
        return _bad(f"invalid JSON: {error}")
    try:
        script = None if body is None else Script.from_json(body)
    except ScriptError as exc:
        return _bad(str(exc))
    _state(request).default = script
    return JSONResponse({"default": None if script is None else script.to_json()})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"ok": True})


def _filtered(request: Request) -> list[Record]:
    records = list(_state(request).log)
    path = request.query_params.get("path")
    kind = request.query_params.get("kind")
    if path:
        records = [r for r in records if r.path == path]
    if kind:
        records = [r for r in records if r.kind == kind]
    return records


async def list_requests(request: Request) -> Response:
    return JSONResponse([r.to_json() for r in _filtered(request)])


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


async def wait(request: Request) -> Response:
    """Wait for generation requests to reach a condition.

    ``?disconnected=1`` - at least ``count`` requests saw their client disconnect;
    ``?ended=1`` - at least ``count`` requests ended (any outcome);
    ``?hanging=1`` - at least ``count`` requests are stalled on purpose;
    otherwise at least ``count`` requests arrived.  ``id=N`` restricts to one request.
    Answers 200 with the matching requests, or 408 when ``timeout`` (seconds) runs out.
    """
    state = _state(request)
    params = request.query_params
    try:
        count = int(params.get("count", "1"))
        timeout = min(float(params.get("timeout", "5")), MAX_WAIT)
        only_id = int(params["id"]) if "id" in params else None
    except ValueError:
        return _bad("count, timeout and id must be numbers")
    disconnected, ended, hanging = (_flag(request, n) for n in ("disconnected", "ended", "hanging"))

    def matching() -> list[Record]:
        records = [r for r in state.log if r.kind == GENERATION]
        if only_id is not None:
            records = [r for r in records if r.id == only_id]
        if disconnected:
            return [r for r in records if r.disconnected]
        if ended:
            return [r for r in records if r.ended_at is not None]
        if hanging:
            return [r for r in records if r.outcome == HANGING]
        return records

    def predicate() -> list[Record] | None:
        found = matching()
        return found if len(found) >= count else None

    found = await state.wait_until(predicate, timeout)
    if found is None:
        return JSONResponse(
            {"ok": False, "requests": [r.to_json() for r in matching()]}, status_code=408
        )
    return JSONResponse({"ok": True, "requests": [r.to_json() for r in found]})


def create_app(*, max_concurrent_requests: int = 0, max_log: int = 20_000) -> Starlette:
    routes = [
        # text-generation-inference
        Route("/health", health, methods=["GET"]),
        Route("/info", info, methods=["GET"]),
        Route("/generate", partial(tgi.generate, stream=False), methods=["POST"]),
        Route("/generate_stream", partial(tgi.generate, stream=True), methods=["POST"]),
        Route("/", partial(tgi.generate, stream=None), methods=["POST"]),
        Route("/chat_tokenize", tgi.chat_tokenize, methods=["POST"]),
        Route("/tokenize", tgi.tokenize_endpoint, methods=["POST"]),
        # OpenAI
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
        Route("/v1/completions", completions.completions, methods=["POST"]),
        # control
        Route("/_control/scripts", push_scripts, methods=["POST"]),
        Route("/_control/scripts", get_scripts, methods=["GET"]),
        Route("/_control/default", set_default, methods=["POST"]),
        Route("/_control/reset", reset, methods=["POST"]),
        Route("/_control/requests", list_requests, methods=["GET"]),
        Route("/_control/wait", wait, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.server = ServerState(max_log=max_log, max_concurrent_requests=max_concurrent_requests)
    return app
