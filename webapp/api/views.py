"""The ``/v1`` endpoints: async views that take a personal token and follow a generation.

Each call makes one trip to the database thread (authenticate, check, create),
then follows its generation through the relay on the event loop. A client that
goes away mid-call (Django cancels the view or the stream) stops the generation
at the inference server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django import db
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from inference import relay
from webapp.accounts.tokens.http import bearer_secret

from . import calls, openapi
from .errors import ApiError, generation_failure, internal_error
from .follow import Waiting, generation_follow
from .shapes import SSE_KEEPALIVE, Reply, finish_reason, model_list, model_object, sse

logger = logging.getLogger(__name__)
T = TypeVar("T")
SAVED_TEXT = "saved_text"  # in an end read from the database: the text as saved
# A stream's status waits for its first event this many quiet periods (5 s each): an
# early refusal (a busy backend, a changed access) still gets its own status code.
HEAD_WAITS = 2
NO_KEY = (
    "You didn't provide an API key. Send your personal token in an Authorization header "
    "using Bearer auth (Authorization: Bearer gh_…); create one in your account settings. "
    "A signed-in browser session is not accepted here."
)
View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def database(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run ``function`` in the sync thread, then give its connection back to the pool."""

    def run(*args: Any, **kwargs: Any) -> T:
        db.close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            db.close_old_connections()

    return sync_to_async(run)


def api_view(*methods: str) -> Callable[[View], View]:
    """Answer in OpenAI's error shape, allow only ``methods``, and take bearer tokens only.

    CSRF protection is for cookies; these views never read the session, and a request
    without a bearer token is refused before anything else, so exempting them opens
    nothing to a cross-site form.
    """

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if request.method not in methods:
                    response = ApiError(
                        405,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        code="method_not_allowed",
                    ).response()
                    response["Allow"] = ", ".join(methods)
                    return response
                return await view(request, _caller(request), *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except RequestDataTooBig:
                return ApiError(413, "The request body is too large.").response()
            except Exception:  # a client reads OpenAI's shape, never Django's error page
                logger.exception("%s %s failed", request.method, request.path)
                return internal_error().response()

        return csrf_exempt(wrapper)

    return decorate


def _caller(request: HttpRequest) -> calls.Caller:
    secret = bearer_secret(request)
    if secret is None:
        raise ApiError(401, NO_KEY, type="authentication_error", code="missing_api_key")
    site = request.build_absolute_uri("/").rstrip("/")
    return calls.Caller(secret=secret, ip=request.META.get("REMOTE_ADDR"), site=site)


@api_view("GET")
async def models(request: HttpRequest, caller: calls.Caller) -> HttpResponse:
    usable = await database(calls.api_models)(caller=caller)
    return JsonResponse(model_list(usable))


@api_view("GET")
async def model(request: HttpRequest, caller: calls.Caller, slug: str) -> HttpResponse:
    found = await database(calls.api_model)(caller=caller, slug=slug)
    return JsonResponse(model_object(found))


@api_view("POST")
async def chat_completions(request: HttpRequest, caller: calls.Caller) -> HttpResponseBase:
    return await _complete(request, caller, scope="chat")


@api_view("POST")
async def completions(request: HttpRequest, caller: calls.Caller) -> HttpResponseBase:
    return await _complete(request, caller, scope="completions")


async def _complete(request: HttpRequest, caller: calls.Caller, *, scope: str) -> HttpResponseBase:
    body = request.body
    # Shielded: a client that leaves meanwhile must not leave a generation nobody stops.
    starting = asyncio.ensure_future(
        database(calls.api_call_start)(caller=caller, body=body, scope=scope)
    )
    try:
        call, started = await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await _stop((await starting)[1])
        raise
    chat = scope == "chat"
    logprobs = not chat and call.raw.get("logprobs") is not None
    reply = Reply(started.generation_id, started.model, chat=chat, logprobs=logprobs)
    events = _events(started)
    try:
        if not call.stream:
            return await _whole(events, reply)
        head = await _head(events)
    except asyncio.CancelledError:  # the client left before the answer began
        await _stop(started)
        raise
    done = head[-1] if head and head[-1].get("type") == "done" else None
    if done is not None and done["status"] not in ("done", "stopped"):
        await events.aclose()
        return generation_failure(done.get("error")).response()
    stream = _sse(started, reply, head, events, include_usage=call.include_usage)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on as it comes
    return response


def _events(started: calls.Started) -> AsyncGenerator[Any, None]:
    async def ended() -> relay.DoneEvent | None:
        generation = await database(calls.api_call_outcome)(generation_id=started.generation_id)
        if generation is None or generation.is_active:
            return None
        event: dict[str, Any] = {
            "type": "done",
            "generation": started.generation_id,
            "seq": 0,
            "status": generation.status,
            "stats": generation.stats(),
            SAVED_TEXT: generation.text,  # the log is gone: the saved text is the whole text
        }
        if generation.error_code:
            event["error"] = {"code": generation.error_code, "detail": generation.error_detail}
        return event  # type: ignore[return-value]

    return generation_follow(started.generation_id, started.group, ended=ended)


async def _whole(events: AsyncIterator[Any], reply: Reply) -> HttpResponse:
    text: list[str] = []
    tokens: list[Any] = []
    async for event in events:
        if isinstance(event, Waiting):
            continue
        if event["type"] == "chunk":
            text.append(event["text"])
            tokens += event.get("tokens", [])
            continue
        if event["status"] in ("done", "stopped"):
            whole = event.get(SAVED_TEXT, "".join(text))
            return JsonResponse(reply.whole(whole, event, tokens))
        return generation_failure(event.get("error")).response()
    raise ApiError(500, "The generation ended without a result.", type="server_error")


async def _head(events: AsyncIterator[Any]) -> list[Any]:
    """Read events until the first one that is not a wait, or HEAD_WAITS waits."""
    head: list[Any] = []
    async for event in events:
        head.append(event)
        if not isinstance(event, Waiting) or len(head) >= HEAD_WAITS:
            break
    return [event for event in head if not isinstance(event, Waiting)]


async def _sse(
    started: calls.Started,
    reply: Reply,
    head: list[Any],
    events: AsyncGenerator[Any, None],
    *,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    finished, sent = False, 0
    try:
        if reply.chat:
            yield sse(reply.chunk())
        async for event in _chain(head, events):
            if isinstance(event, Waiting):
                yield SSE_KEEPALIVE
            elif event["type"] == "chunk":
                sent += len(event["text"])
                yield sse(reply.chunk(event["text"], tokens=event.get("tokens")))
            else:
                finished = True
                rest = event.get(SAVED_TEXT, "")[sent:]
                if rest:
                    yield sse(reply.chunk(rest))
                for data in _ending(reply, event, include_usage=include_usage):
                    yield data
                return
    except Exception:  # the status is sent: the client learns of the fault in the stream
        logger.exception("generation %s: the stream failed", started.generation_id)
        yield sse(internal_error().body())
        yield sse("[DONE]")
    finally:
        if not finished:  # the client went away (or the server is stopping)
            await asyncio.shield(_stop(started))
        await events.aclose()


async def _chain(head: list[Any], events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for event in head:
        yield event
    if not (head and head[-1]["type"] == "done"):
        async for event in events:
            yield event


def _ending(reply: Reply, done: dict[str, Any], *, include_usage: bool) -> list[bytes]:
    stats = done.get("stats") or {}
    if done["status"] not in ("done", "stopped"):
        return [sse(generation_failure(done.get("error")).body()), sse("[DONE]")]
    ending = [sse(reply.chunk(reason=finish_reason(stats.get("finish_reason"))))]
    if include_usage:
        ending.append(sse(reply.usage_chunk(stats)))
    return [*ending, sse("[DONE]")]


async def _stop(started: calls.Started) -> None:
    """Stop the call's generation: its client is gone."""
    try:
        before_start = await database(calls.api_call_stop)(started=started)
        if before_start:
            await relay.publish_end(
                started.generation_id, started.group, after_seq=0, status="stopped"
            )
    except Exception:
        logger.exception("generation %s: could not be stopped", started.generation_id)


@csrf_exempt
def openapi_document(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return ApiError(405, "Use GET.", code="method_not_allowed").response()
    site = request.build_absolute_uri("/").rstrip("/")
    return JsonResponse(openapi.document(server=f"{site}/v1"))


@csrf_exempt
def unknown(request: HttpRequest, path: str = "") -> HttpResponse:
    return ApiError(
        404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url"
    ).response()
