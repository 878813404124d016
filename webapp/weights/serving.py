"""Serve one stored file: whole or one byte range, in bounded memory, or handed off.

``file_response`` answers GET and HEAD with ``ETag``, ``Content-Length`` and
``Accept-Ranges``; a single ``Range`` (``bytes=a-b``, ``bytes=a-``,
``bytes=-n``) gets 206, unless ``If-Range`` names another version, which
gets the whole file; a malformed range, several ranges, or one that starts
past the end gets 416 with ``Content-Range: bytes */size``. The body is read
from the storage backend in chunks of ``WEIGHTS["CHUNK_SIZE"]`` by an async
iterator under ASGI (Django's ASGI handler would otherwise read a sync
iterator whole into memory), a sync one under WSGI. ``WEIGHTS["DELIVERY"]``
may hand the transfer to the web server (``accel``: ``X-Accel-Redirect``,
nginx then serves ranges itself) or to the storage's presigned URL
(``presigned``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import Storage
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """A Range header that cannot be served: answered with 416."""


@dataclass(frozen=True)
class StoredFile:
    storage: Storage
    path: str
    size: int
    etag: str  # the file's version, unquoted (a weight file's SHA-256)
    filename: str  # the name a client saves it as
    content_type: str = "application/octet-stream"

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'


def range_parse(header: str, size: int) -> tuple[int, int]:
    """Return the (first, last) byte positions ``header`` asks for, both included."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        raise RangeNotSatisfiable(
            "The Range header must be one range in bytes, such as bytes=0-1023, bytes=1024- "
            "or bytes=-1024."
        )
    first, last = match.groups()
    if first == "":
        if last == "" or int(last) == 0:
            raise RangeNotSatisfiable("A suffix range needs a length above zero (bytes=-1024).")
        return max(size - int(last), 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        raise RangeNotSatisfiable("A range's last byte must not come before its first.")
    if start >= size:
        raise RangeNotSatisfiable(f"The range starts past the end of the file ({size} bytes).")
    return start, end


def _settings() -> dict[str, Any]:
    return settings.WEIGHTS


def _etag_matches(value: str, etag: str) -> bool:
    """A strong comparison, as If-Range requires (weak tags never match)."""
    return any(tag.strip() == etag for tag in value.split(","))


def file_response(
    request: HttpRequest, file: StoredFile, *, headers: dict[str, str] | None = None
) -> HttpResponse:
    """Answer GET or HEAD for ``file``; ``headers`` are added to every answer, 416 included."""
    common = {
        "ETag": file.quoted_etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition_header(True, file.filename),
        "Cache-Control": "private, no-transform",
        **(headers or {}),
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match.replace("W/", ""), file.quoted_etag):
        return _with(HttpResponse(status=304), common)
    wanted = _wanted_range(request, file)
    if wanted is None:
        return _not_satisfiable(request, file, common)
    delivery = _settings()["DELIVERY"]
    if delivery == "accel":
        return _accel(file, common)
    if delivery == "presigned" and (url := _presigned_url(file)):
        return _with(HttpResponseRedirect(url), common)
    return _stream(request, file, wanted, common)


@dataclass(frozen=True)
class _Wanted:
    start: int
    end: int  # included
    partial: bool  # a Range was honoured: 206


def _wanted_range(request: HttpRequest, file: StoredFile) -> _Wanted | None:
    """Return the bytes to send (the whole file by default), or None for a 416."""
    whole = _Wanted(0, file.size - 1, partial=False)
    header = request.headers.get("Range")
    if header is None or file.size == 0:
        return whole
    if_range = request.headers.get("If-Range")
    if if_range is not None and not _etag_matches(if_range, file.quoted_etag):
        return whole  # the client holds another version: it gets this one whole
    try:
        start, end = range_parse(header, file.size)
    except RangeNotSatisfiable as exc:
        request.range_problem = str(exc)  # type: ignore[attr-defined]
        return None
    return _Wanted(start, end, partial=True)


def _with(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response[name] = value
    return response


def _not_satisfiable(request: HttpRequest, file: StoredFile, common: dict) -> HttpResponse:
    detail = getattr(request, "range_problem", "The range cannot be served.")
    response = HttpResponse(f"{detail}\n", status=416, content_type="text/plain; charset=utf-8")
    response["Content-Range"] = f"bytes */{file.size}"
    return _with(response, {**common, "Content-Disposition": "inline"})


def _accel(file: StoredFile, common: dict) -> HttpResponse:
    """Let nginx send the file (it answers Range itself from the internal location)."""
    response = HttpResponse(content_type=file.content_type)
    response["X-Accel-Redirect"] = _settings()["ACCEL_PREFIX"] + quote(file.path)
    response["X-Accel-Buffering"] = "no"
    return _with(response, common)


def _presigned_url(file: StoredFile) -> str | None:
    """Return a short-lived URL the storage signs itself (S3 and others), or None."""
    max_age = _settings()["PRESIGNED_MAX_AGE"]
    try:
        url = file.storage.url(file.path, expire=max_age)  # type: ignore[call-arg]
    except (TypeError, NotImplementedError):  # no presigning: stream it ourselves
        return None
    return url if url.startswith(("https://", "http://")) else None


def _stream(request: HttpRequest, file: StoredFile, wanted: _Wanted, common: dict) -> HttpResponse:
    length = wanted.end - wanted.start + 1
    if request.method == "HEAD":
        response: HttpResponse = HttpResponse(content_type=file.content_type)
    else:
        # Under ASGI an async iterator: Django would read a sync one whole into memory first.
        read = _achunks if isinstance(request, ASGIRequest) else _chunks
        response = StreamingHttpResponse(  # type: ignore[assignment]
            read(file, wanted.start, length), content_type=file.content_type
        )
    if wanted.partial:
        response.status_code = 206
        response["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{file.size}"
    response["Content-Length"] = str(length)
    return _with(response, common)


def _chunks(file: StoredFile, start: int, length: int) -> Iterator[bytes]:
    """Read ``length`` bytes from ``start``, one chunk in memory at a time."""
    chunk_size = _settings()["CHUNK_SIZE"]
    with file.storage.open(file.path, "rb") as handle:
        if start:
            handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(chunk_size, left))
            if not chunk:
                return  # the stored file is shorter than recorded: the client sees it end early
            left -= len(chunk)
            yield chunk


async def _achunks(file: StoredFile, start: int, length: int) -> AsyncIterator[bytes]:
    """``_chunks`` off the event loop: each read runs in a thread."""
    chunks = _chunks(file, start, length)
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            yield chunk
    finally:
        await asyncio.to_thread(chunks.close)
