"""Sign up with email and password, verify the address, sign in and out, reset a password."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.factories import PASSWORD, UserFactory
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db


def _link(message) -> str:
    return re.search(r"https?://[^\s]+", message.body).group(0)


def test_signing_up_sends_a_verification_email_and_verifying_signs_in(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "ada@example.org",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    user = User.objects.get(email="ada@example.org")
    assert not user.emailaddress_set.get().verified

    link = _link(mail.outbox[0])
    assert client.get(link).status_code == 200  # a confirmation page, not a state change on GET
    response = client.post(link)
    assert response.status_code == 302
    assert user.emailaddress_set.get().verified
    assert client.get("/").status_code == 200


def test_an_unverified_user_cannot_sign_in(client):
    client.post(
        "/accounts/signup/",
        {
            "email": "bob@example.org",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    client.logout()
    response = client.post("/accounts/login/", {"login": "bob@example.org", "password": PASSWORD})
    assert response.status_code == 302
    assert "confirm-email" in response["Location"]
    assert client.get("/").status_code == 302


def test_sign_in_and_out(client):
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused(client):
    user = UserFactory()
    response = client.post("/accounts/login/", {"login": user.email, "password": "nope"})
    assert response.status_code == 200
    assert b"not correct" in response.content or b"incorrect" in response.content


def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    client.post("/accounts/password/reset/", {"email": user.email})
    assert len(mail.outbox) == 1
    link = _link(mail.outbox[0])
    form_page = client.get(link, follow=True)
    action = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    response = client.post(
        action, {"password1": "a brand new secret 42", "password2": "a brand new secret 42"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new secret 42")


def test_the_user_model_is_keyed_by_email():
    user = User.objects.create_user("Grace@Example.org", "pw")
    assert user.email == "Grace@example.org"
    assert str(user) == "Grace@example.org"
    admin = User.objects.create_superuser("root@example.org", "pw")
    assert admin.is_staff and admin.is_superuser
