"""The web command of the deployment trusts no proxy unless told: a forged
X-Forwarded-For does not give a client a fresh address for the sign-in limits."""

from __future__ import annotations

import re
import shlex
import sys

import httpx
import pytest

from tests.factories import PASSWORD, UserFactory
from tests.services import ROOT, Service, free_port, http_ok
from tests.services import test_database_env as database_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def procfile_web(port: int) -> Service:
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    command = (
        line.removeprefix("web:").strip().replace("uvicorn", f"{sys.executable} -m uvicorn", 1)
    )
    env = {**database_env(), "PORT": str(port)}
    env.pop("TRUSTED_PROXIES", None)
    return Service(
        "procfile-web",
        ["sh", "-c", command.replace("0.0.0.0", "127.0.0.1")],
        env=env,
        ready=http_ok(f"http://127.0.0.1:{port}/healthz"),
    )


def sign_in(client: httpx.Client, email: str, password: str, forwarded_for: str) -> str:
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        "/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"X-Forwarded-For": forwarded_for, "Referer": str(client.base_url)},
    )
    return answer.text


def test_a_forged_forwarded_for_does_not_escape_the_sign_in_limit():
    user, others = UserFactory(), UserFactory.create_batch(12)
    port = free_port()
    web = procfile_web(port).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as client:
            # Another account each time: only the per-address limit can stop this.
            for attempt, other in enumerate(others):
                sign_in(client, other.email, "wrong", forwarded_for=f"203.0.113.{attempt}")
            last = sign_in(client, user.email, PASSWORD, forwarded_for="198.51.100.7")
    finally:
        web.stop()
    assert "Too many failed login attempts" in last, shlex.quote(last[:300])
