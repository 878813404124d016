"""Websocket routes: session authentication and an Origin check in front of every consumer."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from webapp.chat.routing import websocket_urlpatterns


def websocket_application() -> AllowedHostsOriginValidator:
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
