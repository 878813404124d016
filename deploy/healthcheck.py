"""Container health checks for the Gatehouse image (python:slim has no curl).

    python deploy/healthcheck.py http /healthz   the web process answers 200 on a path
    python deploy/healthcheck.py beat [SECONDS]  celery beat saved its schedule recently

Exit status 0 means healthy, 1 unhealthy.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import urllib.error
import urllib.request

BEAT_SCHEDULE = "/tmp/celerybeat-schedule"  # noqa: S108 - the beat command writes it there


def allowed_host(value: str) -> str:
    """Return a Host header that Django accepts for ``value`` (an ALLOWED_HOSTS list).

    A request with any other Host gets 400 from Django, so probing with
    ``Host: 127.0.0.1`` would report a healthy process as broken.
    """
    for host in (part.strip() for part in value.split(",")):
        if host and host != "*":
            return host.lstrip(".")  # ".example.org" also allows "example.org"
    return "localhost"


def check_http(path: str) -> bool:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        # The probe speaks to the process directly, not through the TLS proxy:
        # say so the way the proxy would, so that no HTTPS redirect answers it.
        headers={
            "Host": allowed_host(os.environ.get("ALLOWED_HOSTS", "")),
            "X-Forwarded-Proto": "https",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def check_beat(max_age: float) -> bool:
    """Beat saves its schedule every few minutes while its loop runs."""
    files = glob.glob(BEAT_SCHEDULE + "*")  # the dbm module may add a suffix
    if not files:
        return False
    return time.time() - max(os.path.getmtime(name) for name in files) < max_age


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "http":
        return 0 if check_http(argv[1]) else 1
    if argv and argv[0] == "beat":
        return 0 if check_beat(float(argv[1]) if len(argv) > 1 else 600.0) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
