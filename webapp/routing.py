"""Websocket routes: session authentication and an Origin check in front of every consumer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from webapp.chat.routing import websocket_urlpatterns

DEFAULT_PORTS = {"http": 80, "https": 443}


class SameOriginValidator(OriginValidator):
    """Accept a socket only from a page of this site: the ``Origin`` must have the
    socket's own scheme (https for wss, http for ws), host and port, with the host in
    ALLOWED_HOSTS, or be listed whole in CSRF_TRUSTED_ORIGINS. Channels' own
    AllowedHostsOriginValidator looks at the host alone, so http://site:8080 or
    http://site passed for https://site."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not _same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def _same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
    if not origin:
        return False
    if origin.rstrip("/") in {o.rstrip("/").lower() for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    try:
        parsed = urlsplit(origin)
        origin_port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    except ValueError:
        return False
    expected_scheme = "https" if _secure(scope, headers) else "http"
    domain, port = split_domain_port(headers.get(b"host", b"").decode("latin-1").lower())
    socket_port = int(port) if port.isdigit() else DEFAULT_PORTS[expected_scheme]
    origin_domain, _ = split_domain_port(parsed.netloc)
    return (
        parsed.scheme == expected_scheme
        and bool(origin_domain)
        and validate_host(origin_domain, settings.ALLOWED_HOSTS)
        and origin_domain == domain
        and origin_port == socket_port
    )


def _secure(scope: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """Whether the socket is TLS, by the same rule as Django's ``request.is_secure()``."""
    if scope.get("scheme") == "wss":
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy:
        return False
    name, value = proxy
    header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    return headers.get(header, b"").decode("latin-1").split(",")[0].strip() == value


def websocket_application() -> SameOriginValidator:
    return SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
