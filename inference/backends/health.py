"""Health probes: whether a model server is up and ready to serve, and how much it takes."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Health:
    healthy: bool
    capacity: int | None = None  # replies it serves at once, where the server says
    detail: str = ""


def endpoint_health(*, kind: BackendKind, url: str, api_key: str = "", timeout: float) -> Health:
    """Probe the server at ``url``: up or not, and for TGI its ``max_concurrent_requests``.

    The detail names what failed in words that never quote the URL or the key.
    """
    if not endpoint_probe(kind=kind, url=url, api_key=api_key, timeout=timeout):
        return Health(False, detail="The health check did not answer 200 in time.")
    if kind != "tgi":
        return Health(True)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(
            url.rstrip("/") + "/info", headers=headers, timeout=timeout, follow_redirects=False
        )
        reported = response.json().get("max_concurrent_requests")
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, AttributeError):
        return Health(True)
    return Health(True, capacity=reported if isinstance(reported, int) and reported > 0 else None)
