"""Health probes: one GET that says whether a model server is up and ready to serve."""

from __future__ import annotations

import httpx

from inference.params import BackendKind

_HEALTH_PATHS: dict[BackendKind, str] = {"tgi": "/health", "openai": "/v1/models"}


def endpoint_probe(*, kind: BackendKind, url: str, api_key: str = "", timeout: float) -> bool:
    """Return whether the server at ``url`` answers its health path with 200 within ``timeout``.

    Anything that keeps the probe from getting that answer (an unknown ``kind``, a
    malformed URL or key, a redirect) is a failed probe, never an exception.
    """
    path = _HEALTH_PATHS.get(kind)
    if path is None:
        return False
    target = url.rstrip("/").removesuffix("/v1") + path
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    # A host such as "a..b" fails in idna with UnicodeError, a ValueError, not an httpx error.
    # Redirects are not followed (httpx's default): the key goes to ``url``'s host only.
    try:
        response = httpx.get(target, headers=headers, timeout=timeout, follow_redirects=False)
        return response.status_code == 200
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):
        return False
