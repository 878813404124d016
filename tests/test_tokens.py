"""Personal tokens: created with the secret shown once, listed, revoked, checked on use."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import UserFactory
from webapp.accounts.models import PersonalToken
from webapp.accounts.tokens.services import (
    TokenRefused,
    token_authenticate,
    token_create,
    token_digest,
    token_revoke,
)

pytestmark = pytest.mark.django_db


def _create(client, **fields):
    data = {"name": "cluster script", "expiry": "30", "scopes": ["downloads"], **fields}
    return client.post("/accounts/tokens/new/", data)


def test_a_new_token_is_shown_once_and_only_its_digest_is_kept(client, user):
    client.force_login(user)
    response = _create(client)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    secret = re.search(r'value="(gh_[A-Za-z0-9]{40})"', response.content.decode()).group(1)
    token = PersonalToken.objects.get(user=user)
    assert token.name == "cluster script" and token.scopes == ["downloads"]
    assert token.digest == token_digest(secret) and secret not in str(token.__dict__)
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)

    listing = client.get("/accounts/tokens/").content.decode()
    assert secret not in listing
    assert f"gh_{token.lookup}…" in listing and "cluster script" in listing


def test_a_token_without_name_or_scope_or_with_a_made_up_expiry_is_refused(client, user):
    client.force_login(user)
    for fields in ({"name": "  "}, {"scopes": []}, {"scopes": ["admin"]}, {"expiry": "-3"}):
        response = _create(client, **fields)
        assert response.status_code == 400, fields
        assert "gh_" not in response.content.decode()
    assert not PersonalToken.objects.exists()


def test_the_token_form_needs_a_signed_in_user_and_csrf(client, user):
    assert _create(client).status_code == 302  # to the sign-in page
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert _create(strict).status_code == 403
    assert not PersonalToken.objects.exists()


def test_a_used_token_shows_when_and_from_where_it_was_last_used(client, user):
    _, secret = token_create(user=user, name="laptop", scopes=["downloads"])
    token_authenticate(secret=secret, scope="downloads", ip="203.0.113.7")
    client.force_login(user)
    listing = client.get("/accounts/tokens/").content.decode()
    assert "203.0.113.7" in listing


def test_revoking_a_token_stops_it_at_once_with_a_reason(client, user):
    token, secret = token_create(user=user, name="laptop", scopes=["downloads"])
    client.force_login(user)
    response = client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    with pytest.raises(TokenRefused, match="was revoked on"):
        token_authenticate(secret=secret, scope="downloads")
    assert "revoked" in client.get("/accounts/tokens/").content.decode()


def test_someone_elses_token_cannot_be_revoked(client, user):
    token, secret = token_create(user=UserFactory(), name="theirs", scopes=["downloads"])
    client.force_login(user)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert client.post("/accounts/tokens/not-a-uuid/revoke/").status_code == 404
    assert token_authenticate(secret=secret, scope="downloads").pk == token.pk


def test_an_expired_token_is_refused_with_its_date(user):
    token, secret = token_create(user=user, name="old", scopes=["downloads"])
    PersonalToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    with pytest.raises(TokenRefused, match="expired on"):
        token_authenticate(secret=secret, scope="downloads")


def test_a_deactivated_users_token_stops_working_at_once(user):
    _, secret = token_create(user=user, name="laptop", scopes=["downloads"])
    assert token_authenticate(secret=secret, scope="downloads").user == user
    user.is_active = False
    user.save()
    with pytest.raises(TokenRefused, match="deactivated"):
        token_authenticate(secret=secret, scope="downloads")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # the secret part changed
        lambda s: s[:-1],  # cut short
        lambda s: "xx_" + s[3:],  # not a Gatehouse token
        lambda s: "",
    ],
)
def test_a_wrong_or_mangled_token_is_refused_without_saying_whether_it_exists(user, mangle):
    _, secret = token_create(user=user, name="laptop", scopes=["downloads"])
    with pytest.raises(TokenRefused, match="not valid"):
        token_authenticate(secret=mangle(secret), scope="downloads")


def test_a_token_works_only_for_its_scopes(user):
    _, secret = token_create(user=user, name="laptop", scopes=["downloads"])
    with pytest.raises(TokenRefused, match="does not have the api scope"):
        token_authenticate(secret=secret, scope="api")


def test_revoking_twice_keeps_the_first_date(user):
    token, _ = token_create(user=user, name="laptop", scopes=["downloads"])
    first = token_revoke(user=user, token_id=token.pk).revoked_at
    assert token_revoke(user=user, token_id=token.pk).revoked_at == first


def test_a_token_for_the_api_is_created_with_its_scopes_and_listed_with_them(client, user):
    client.force_login(user)
    form = client.get("/accounts/tokens/").content.decode()
    for scope in ("downloads", "chat", "completions", "models"):
        assert f'value="{scope}"' in form
    assert "http://testserver/v1/" in form  # the base_url the SDK takes
    response = _create(client, name="notebook", scopes=["chat", "models"])
    assert response.status_code == 200
    token = PersonalToken.objects.get(user=user)
    assert token.scopes == ["chat", "models"]
    row = re.search(rf'<tr data-token="{token.pk}">.*?</tr>', response.content.decode(), re.S)
    assert "chat" in row.group(0) and "models" in row.group(0)
    assert "downloads" not in row.group(0)


def test_a_token_opens_only_its_scopes(user):
    _, secret = token_create(user=user, name="chat only", scopes=["chat"])
    assert token_authenticate(secret=secret, scope="chat").user == user
    for scope in ("downloads", "completions", "models"):
        with pytest.raises(TokenRefused) as refused:
            token_authenticate(secret=secret, scope=scope)
        assert refused.value.code == "missing_scope"
        assert f"the {scope} scope" in refused.value.detail
