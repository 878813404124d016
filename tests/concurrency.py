"""Running a call in several threads at the same moment, for races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def all_at_once(function: Callable[[Any], object], arguments: list[Any]) -> None:
    """Call ``function`` on each argument in a thread of its own, all released at once."""
    start = threading.Barrier(len(arguments))

    def run(argument: Any) -> None:
        try:
            start.wait()
            function(argument)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
