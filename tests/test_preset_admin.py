"""Presets in the admin: staff publish and unpublish anyone's; nothing else changes there."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from webapp.chat.configure import presets_publish
from webapp.chat.models import Preset
from webapp.core.errors import PermissionDenied

pytestmark = pytest.mark.django_db

URL = "/admin/chat/preset/"


@pytest.fixture
def presets():
    owner = UserFactory()
    return [
        Preset.objects.create(user=owner, name="Poet", system_prompt="Rhyme.", params={}),
        Preset.objects.create(user=owner, name="Coder", system_prompt="Code.", public=True),
    ]


def _act(client, action, presets):
    return client.post(
        URL, {"action": action, "_selected_action": [str(p.pk) for p in presets]}, follow=True
    )


def test_staff_publish_and_unpublish_presets_from_the_admin(client, presets):
    client.force_login(UserFactory(is_staff=True))
    page = client.get(URL).content.decode()
    assert "Poet" in page and "Coder" in page and "Publish the selected presets" in page

    response = _act(client, "publish", presets)
    assert "Published 1 preset." in response.content.decode()
    assert set(Preset.objects.values_list("public", flat=True)) == {True}

    response = _act(client, "unpublish", presets)
    assert "Unpublished 2 presets." in response.content.decode()
    assert set(Preset.objects.values_list("public", flat=True)) == {False}


def test_the_admin_cannot_edit_add_or_delete_presets(client, presets):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    poet = presets[0]
    assert client.get(f"{URL}add/").status_code == 403
    client.post(f"{URL}{poet.pk}/change/", {"name": "Changed", "system_prompt": "x"})
    client.post(f"{URL}{poet.pk}/delete/", {"post": "yes"})
    _act(client, "delete_selected", presets)
    poet.refresh_from_db()
    assert poet.name == "Poet" and Preset.objects.count() == 2


def test_people_who_are_not_staff_cannot_reach_presets_in_the_admin(client, presets):
    client.force_login(UserFactory())
    response = _act(client, "publish", presets)
    assert "Published" not in response.content.decode()
    assert not Preset.objects.get(name="Poet").public
    with pytest.raises(PermissionDenied):
        presets_publish(user=UserFactory(), preset_ids=[presets[0].pk], public=True)
