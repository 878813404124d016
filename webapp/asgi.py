"""The ASGI entry point: Django for HTTP, Channels for websockets."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.production")
django_application = get_asgi_application()
# Django cuts every response body into 64 KiB messages; a weight file streams in 1 MiB
# chunks (WEIGHTS_CHUNK_SIZE), which then go out whole: a quarter of the per-message work.
django_application.chunk_size = 1024 * 1024

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from webapp.core import heap  # noqa: E402
from webapp.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application()})
get_resolver().url_patterns  # noqa: B018 (every view imported before the heap is frozen)
heap.freeze()
