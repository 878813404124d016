"""The heap of a long-running process (the web server, the worker), frozen once started.

After start-up a process holds about 120,000 objects (Django, its apps, Celery)
that live as long as it does, and Python's collector walks every one of them on
each full collection: 60 ms in the web process and 70 to 80 ms in the worker on
this project's machine, a pause of the event loop that relays every reply. A
relay loop carrying 200 streams ran three such collections in ten seconds.
``freeze`` collects once, then moves what is left out of the collector's sight
(``gc.freeze``): later collections walk only what was made since.
"""

from __future__ import annotations

import gc
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def freeze() -> None:
    """Collect once, then keep the started process's objects out of later collections."""
    if not settings.GC_FREEZE:
        return
    gc.collect()
    gc.freeze()
    logger.debug("%d objects frozen", gc.get_freeze_count())
