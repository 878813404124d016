"""Celery beat's scheduler, which runs the reaper itself instead of queueing it.

A reaper that is a task on the queue needs a worker to run it, and the worker
whose generations need reaping may be the one that died: with no worker at
all, nothing would be marked, and on a restart every queued sweep would run
at once. Entries whose options say ``in_beat`` run here, in beat's own
process, on time whatever the workers do; the others are sent as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry

logger = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if not entry.options.get("in_beat"):
            super().apply_entry(entry, producer=producer)
            return
        import django
        from django import db

        django.setup()
        db.close_old_connections()
        try:
            result = self.app.tasks[entry.task].apply(args=entry.args, kwargs=entry.kwargs)
            if result.failed():
                logger.error("%s failed in beat: %r", entry.name, result.result)
            else:
                logger.debug("%s ran in beat: %r", entry.name, result.result)
        except Exception:
            logger.exception("%s failed in beat", entry.name)
        finally:
            db.connection.close()
