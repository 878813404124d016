"""Periodic chat housekeeping."""

from __future__ import annotations

from celery import shared_task

from .library.services import conversations_purge


@shared_task(
    name="webapp.chat.tasks.purge_deleted_conversations",
    ignore_result=True,
    soft_time_limit=60,
    time_limit=120,
)
def purge_deleted_conversations() -> int:
    """Delete for good the conversations whose undo window is over."""
    return conversations_purge()
