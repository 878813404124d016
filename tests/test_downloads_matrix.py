"""The access matrix for downloads: every kind of user at each download entry point
(signed link, token download, the Hub API) is let in or told the rule's reason."""

from __future__ import annotations

import pytest

from tests.access_kinds import GATE, KINDS, REVOKE_REASON, user_build, world_build
from tests.test_downloads import signed_path
from tests.weights import storages_for, write_file
from webapp.accounts.tokens.services import token_create
from webapp.weights.services import weight_file_attach

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::Warning")]

ENTRY_POINTS = ["download link", "token download", "Hub API"]
ALLOWED = {"granted weights", "staff"}


def expected(kind: str) -> str | None:
    """What each kind is told about the weights of the gated model's gate."""
    if kind in ALLOWED:
        return None
    return {
        "anonymous": f"Sign in, then request access to {GATE}.",
        "registered": f"{GATE} is gated: request access on its page.",
        "group member": f"{GATE} is gated: request access on its page.",
        "pending": f"Your request for access to {GATE} is waiting for review.",
        "granted chat only": (
            f"Your access to {GATE} does not include weights; ask for it on the gate's page."
        ),
        "expired": f"Your access to {GATE} expired on ",
        "revoked": f"Your access to {GATE} was revoked: {REVOKE_REASON}",
        "licence outdated": (
            f"The licence of {GATE} has changed: accept the new version on the gate's page "
            "to go on."
        ),
    }[kind]


@pytest.fixture
def world(tmp_path, settings):
    settings.STORAGES = storages_for(tmp_path)
    world = world_build()
    write_file(tmp_path, "w.bin", b"weights")
    world.file = weight_file_attach(gate=world.gate, name="w.bin", storage_path="w.bin")
    return world


def _call(client, entry: str, user, world):
    token = {}
    if user.is_authenticated:
        secret = token_create(user=user, name="matrix", scopes=["downloads"])[1]
        token = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if entry == "download link":
        return client.get(signed_path(user, world.file))
    if entry == "token download":
        return client.get(f"/weights/{world.gate.slug}/files/w.bin", **token)
    return client.get(f"/api/models/{world.gate.slug}", **token)


# A link is made for a signed-in user: anonymous people have none (a link used by
# someone else, signed in or not, is tested in test_downloads.py).
CASES = [(k, e) for k in KINDS for e in ENTRY_POINTS if (k, e) != ("anonymous", "download link")]


@pytest.mark.parametrize(("kind", "entry"), CASES)
def test_each_kind_of_user_at_each_download_entry_point(client, world, kind, entry):
    user = user_build(kind, world)
    response = _call(client, entry, user, world)
    reason = expected(kind)
    if reason is None:
        assert response.status_code == 200, response.content
        return
    assert response.status_code == (401 if kind == "anonymous" else 403)
    if entry == "Hub API":
        assert response["X-Error-Code"] == "GatedRepo"
        told = response.json()["error"]
    else:
        told = response.content.decode()
    assert reason in told, told
