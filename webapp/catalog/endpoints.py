"""The health of model endpoints, as the background probe sees it.

The probe runs in beat's process every ENDPOINT_PROBE_INTERVAL seconds: an
endpoint that fails it is skipped by the fair queue until a later probe
passes; TGI's ``/info`` tells how many replies it serves at once.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.utils import timezone

from inference.backends.health import Health, endpoint_health

from .models import ModelEndpoint

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
MAX_PROBES_AT_ONCE = 16


def endpoint_probe_all() -> set[Any]:
    """Probe every active endpoint of an active model at once, save what each answered,
    and return the ids of the models that may take more now (an endpoint came back,
    or reports a larger capacity)."""
    endpoints = list(
        ModelEndpoint.objects.filter(is_active=True, model__is_active=True).select_related("model")
    )
    if not endpoints:
        return set()
    with ThreadPoolExecutor(min(MAX_PROBES_AT_ONCE, len(endpoints))) as pool:
        results = list(pool.map(_probe, endpoints))
    more_room = set()
    for endpoint, health in zip(endpoints, results, strict=True):
        if _recorded(endpoint, health):
            more_room.add(endpoint.model_id)
    return more_room


def _probe(endpoint: ModelEndpoint) -> Health:
    try:
        return endpoint_health(
            kind=endpoint.model.backend,  # type: ignore[arg-type]
            url=endpoint.url,
            api_key=endpoint.api_key,
            timeout=PROBE_TIMEOUT,
        )
    except Exception as exc:  # only the type: the message may quote the URL or the key
        return Health(False, detail=f"The health check failed ({type(exc).__name__}).")


def _recorded(endpoint: ModelEndpoint, health: Health) -> bool:
    """Save ``health``; return whether the endpoint can take more than before."""
    came_back = health.healthy and not endpoint.healthy
    grew = (health.capacity or 0) > (endpoint.reported_capacity or 0)
    if endpoint.healthy and not health.healthy:
        logger.warning("model %s: an endpoint failed its health check", endpoint.model.slug)
    elif came_back:
        logger.info("model %s: an endpoint passed its health check again", endpoint.model.slug)
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(
        healthy=health.healthy,
        reported_capacity=health.capacity if health.healthy else endpoint.reported_capacity,
        checked_at=timezone.now(),
        health_detail=health.detail[:200],
    )
    return came_back or (health.healthy and grew)
