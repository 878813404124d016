"""Periodic jobs of gated access (scheduled in settings.CELERY_BEAT_SCHEDULE).

Each takes no arguments, is safe to run twice (each grant or digest is
marked as it is handled) and has time limits.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="access.expire_grants", soft_time_limit=50, time_limit=60)
def expire_grants() -> int:
    """End expired grants everywhere: their holders' open sockets close now."""
    from .services.grants import grants_expire

    return grants_expire()


@shared_task(name="access.notify_expiring", soft_time_limit=240, time_limit=300)
def notify_expiring() -> int:
    from .services.grants import grants_notify_expiring

    return grants_notify_expiring()


@shared_task(name="access.send_digests", soft_time_limit=240, time_limit=300)
def send_digests() -> int:
    from .services.reviewers import reviewers_send_digests

    return reviewers_send_digests()
