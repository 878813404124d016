"""Liveness and readiness probes for load balancers and orchestrators.

``/readyz`` never waits on a model server: it answers from probe results that
background threads refresh, so a hung backend cannot hold requests (or the
load balancer's probe) for its timeout. The answer says only whether the
database, Redis and at least one backend are up: never an endpoint's URL or key,
which the background probe alone uses, to call that endpoint.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from inference import relay
from inference.backends.health import endpoint_probe
from inference.params import BackendKind
from webapp.catalog.selectors import endpoint_list_serving

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0

Target = tuple[BackendKind, str, str]  # kind, url, api key
_UNPROBED = (float("-inf"), False)


class ProbeCache:
    """Health of model endpoints as last probed, refreshed in the background on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[Target, tuple[float, bool]] = {}
        self._in_flight: set[Target] = set()

    def any_healthy(self, targets: set[Target], *, max_age: float) -> bool:
        """Return whether any of ``targets`` was healthy when last probed; re-probe stale ones."""
        now = time.monotonic()
        with self._lock:
            self._results = {t: result for t, result in self._results.items() if t in targets}
            stale = {t for t in targets if now - self._results.get(t, _UNPROBED)[0] >= max_age}
            for target in stale - self._in_flight:
                self._start_probe(target)
            return any(self._results.get(t, _UNPROBED)[1] for t in targets)

    def _start_probe(self, target: Target) -> None:
        # Called with the lock held, so the probe cannot finish before it is marked in flight.
        thread = threading.Thread(
            target=self._probe, args=(target,), name="readyz-probe", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: unhealthy until the next request tries again
            logger.warning("Cannot start a health probe thread.")
            return
        self._in_flight.add(target)

    def _probe(self, target: Target) -> None:
        kind, url, api_key = target
        healthy = False
        try:
            healthy = endpoint_probe(kind=kind, url=url, api_key=api_key, timeout=PROBE_TIMEOUT)
        except Exception as exc:
            # Only the type: the message may quote the endpoint's URL or key.
            logger.warning("A %s endpoint's health probe failed: %s", kind, type(exc).__name__)
        finally:
            with self._lock:
                self._results[target] = (time.monotonic(), healthy)
                self._in_flight.discard(target)


_probes = ProbeCache()


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    database = _database_ok()
    checks = {"database": database, "redis": relay.ping(), "backend": database and _backend_ok()}
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def _backend_ok() -> bool:
    # Read in the request thread: a background thread cannot see a test's open transaction.
    targets = set(endpoint_list_serving())
    return _probes.any_healthy(targets, max_age=settings.READYZ_PROBE_INTERVAL)
