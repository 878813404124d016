"""The HTTP both backends send through: one aiohttp session (and connection pool) per
event loop, so a reply opens no client of its own and reuses a kept-alive connection
(a worker's replies all stream on its one relay loop: ``inference.runtime``).

aiohttp rather than the OpenAI SDK's httpx: on this machine the first line of a
stream came back in 0.4 ms against 0.9 ms through the SDK's ``post``, and a
relayed reply's first token 1.2 ms sooner (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from .base import (
    BackendError,
    BackendFailed,
    BackendTimeout,
    connection_error,
    malformed_error,
    status_error,
)
from .base import parse_body as _parse_body

# A TGI stream's last event repeats the whole generated text: allow lines of a few MiB.
READ_BUFFER = 2**20

_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[None]]
] = weakref.WeakKeyDictionary()


async def session() -> aiohttp.ClientSession:
    """Return the running loop's session, made on first use and closed when the loop shuts
    down its async generators (as ``asyncio.run`` and the test loops do before closing)."""
    loop = asyncio.get_running_loop()
    found = _sessions.get(loop)
    if found is None or found[0].closed:
        # No cap on connections: every stream of a worker holds one for its whole length.
        made = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), read_bufsize=READ_BUFFER
        )
        keeper = _closed_with_the_loop(made)
        await anext(keeper)
        found = _sessions[loop] = (made, keeper)
    return found[0]


async def _closed_with_the_loop(made: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await made.close()


@asynccontextmanager
async def opened(
    method: str, url: str, *, missing_ok: bool = False, **kwargs: Any
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send a request; yield its answer once the server has begun it with a 200 (or a 404,
    ``missing_ok``). An answer left before its end closes its connection: a stop or a
    failure ends the request on the server too."""
    try:
        response = await (await session()).request(method, url, **kwargs)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise connecting_error(exc) from exc
    try:
        if response.status != 200 and not (missing_ok and response.status == 404):
            raise status_error(response.status, await _error_body(response))
        yield response
    except BaseException:
        response.close()
        raise
    finally:
        response.release()


async def lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Yield the answer's lines; a read that fails raises the backend error for it."""
    try:
        async for line in response.content:
            yield line
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise reading_error(exc) from exc


async def json_body(response: aiohttp.ClientResponse) -> Any:
    """Return the answer's JSON body; a read that fails or a body that is not JSON raises
    the backend error for it."""
    try:
        return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise reading_error(exc) from exc
    except ValueError as exc:
        raise malformed_error() from exc


async def _error_body(response: aiohttp.ClientResponse) -> object:
    try:
        return _parse_body(await response.read())
    except (aiohttp.ClientError, TimeoutError):
        return ""


def timeout(total: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, connect=connect)


def connecting_error(exc: Exception) -> BackendError:
    """Return the error for a request the server did not begin to answer."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ConnectionTimeoutError):
        return BackendTimeout()
    return connection_error(exc, answering=False)


def reading_error(exc: Exception) -> BackendError:
    """Return the error for an answer that broke off after it had begun."""
    if isinstance(exc, TimeoutError):
        return BackendTimeout()
    if isinstance(exc, aiohttp.ClientError):
        return connection_error(exc, answering=True)
    return BackendFailed()
