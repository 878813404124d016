"""Weight files: attached with their checksum, downloaded by signed links and personal tokens,
every refusal readable and recorded."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from tests.factories import GrantFactory, UserFactory
from tests.weights import storages_for, weights_build, write_file
from webapp.access.models import AuditEntry, Grant
from webapp.accounts.tokens.services import token_create, token_revoke
from webapp.core.errors import ValidationFailed
from webapp.weights.links import SALT, link_sign
from webapp.weights.services import weight_file_attach

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::Warning")]


@pytest.fixture
def weights(tmp_path, settings):
    settings.STORAGES = storages_for(tmp_path)
    return weights_build(tmp_path)


def body(response) -> bytes:
    return b"".join(response) if response.streaming else response.content


def signed_path(user, file) -> str:
    return f"/weights/d/{link_sign(user_id=user.pk, file_id=file.pk)}/{file.name}"


def refusals() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="download_refused"))


def test_a_holder_is_sent_from_the_file_url_to_a_signed_link_that_works_without_a_session(
    client, weights
):
    file = weights.files["model.safetensors"]
    client.force_login(weights.holder)
    response = client.get(f"/weights/{weights.gate.slug}/files/{file.name}")
    assert response.status_code == 302
    link = response["Location"]
    assert re.match(r"http://testserver/weights/d/[^/]+/model\.safetensors$", link)

    client.logout()  # curl and wget carry no session: the signature names the user
    response = client.get(link)
    assert response.status_code == 200
    assert body(response) == weights.data["model.safetensors"]
    assert response["ETag"] == f'"{file.sha256}"'
    assert response["Content-Length"] == str(file.size)
    assert response["Accept-Ranges"] == "bytes"
    assert 'filename="model.safetensors"' in response["Content-Disposition"]
    entry = AuditEntry.objects.get(action="download")
    assert (entry.subject_id, entry.gate_id, entry.target) == (
        weights.holder.pk,
        weights.gate.pk,
        str(file.pk),
    )
    assert entry.detail["via"] == "link" and entry.outcome == "ok"


def test_a_files_page_lists_sizes_and_checksums_for_holders_only(client, weights):
    client.force_login(weights.holder)
    page = client.get(f"/weights/{weights.gate.slug}/").content.decode()
    for file in weights.files.values():
        assert file.sha256 in page and file.name in page
    assert "/weights/d/" in page  # links to copy into curl or wget

    client.force_login(weights.outsider)
    response = client.get(f"/weights/{weights.gate.slug}/", HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    text = response.content.decode()
    assert "does not include weights" in text and weights.files["config.json"].sha256 not in text
    assert len(refusals()) == 1


def test_another_signed_in_users_link_is_refused_with_a_reason(client, weights):
    file = weights.files["config.json"]
    client.force_login(weights.outsider)
    response = client.get(signed_path(weights.holder, file), HTTP_ACCEPT="text/html")
    assert response.status_code == 403
    assert "made for another account" in response.content.decode()
    assert "<html" in response.content.decode()  # a page for a browser
    [entry] = refusals()
    assert entry.subject_id == weights.outsider.pk and entry.gate_id == weights.gate.pk


def test_an_expired_link_is_refused_in_plain_text_for_curl(client, weights):
    file = weights.files["config.json"]
    old = link_sign(user_id=weights.holder.pk, file_id=file.pk, now=time.time() - 25 * 3600)
    response = client.get(f"/weights/d/{old}/{file.name}", HTTP_ACCEPT="*/*")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().startswith("This download link expired on ")
    assert refusals()[0].detail["reason"].startswith("This download link expired")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s[:-2] + ("aa" if not s.endswith("aa") else "bb"),  # signature changed
        lambda s: s[: len(s) // 2],  # cut short
        lambda s: signing.dumps({"u": "x", "f": "y", "e": 9999999999}, salt=SALT + "x"),
        lambda s: "not-a-link",
    ],
)
def test_a_tampered_link_is_refused_and_recorded(client, weights, tamper):
    file = weights.files["config.json"]
    signed = tamper(link_sign(user_id=weights.holder.pk, file_id=file.pk))
    response = client.get(f"/weights/d/{signed}/{file.name}")
    assert response.status_code == 403
    assert "changed or cut short" in response.content.decode()
    assert len(refusals()) == 1


def test_a_link_stops_working_when_the_grant_is_revoked(client, weights):
    path = signed_path(weights.holder, weights.files["config.json"])
    assert client.get(path).status_code == 200
    Grant.objects.filter(user=weights.holder).update(
        revoked_at=timezone.now(), revoke_reason="Shared outside the lab."
    )
    response = client.get(path)
    assert response.status_code == 403
    assert "was revoked: Shared outside the lab." in response.content.decode()


def test_a_link_of_a_deactivated_user_is_refused(client, weights):
    path = signed_path(weights.holder, weights.files["config.json"])
    weights.holder.is_active = False
    weights.holder.save()
    response = client.get(path)
    assert response.status_code == 403 and "deactivated" in response.content.decode()


def test_a_link_for_another_file_name_is_not_found(client, weights):
    file = weights.files["config.json"]
    signed = link_sign(user_id=weights.holder.pk, file_id=file.pk)
    assert client.get(f"/weights/d/{signed}/model.safetensors").status_code == 404


def test_a_personal_token_downloads_directly_and_its_use_is_recorded(client, weights):
    _, secret = token_create(user=weights.holder, name="cluster", scopes=["downloads"])
    file = weights.files["tokenizer/tokenizer.json"]
    response = client.get(
        f"/weights/{weights.gate.slug}/files/{file.name}",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 200
    assert body(response) == weights.data[file.name]
    entry = AuditEntry.objects.get(action="download")
    assert entry.detail["via"] == "token" and entry.detail["token"].startswith("gh_")
    assert entry.ip == "198.51.100.4"


def test_a_signed_link_accepts_its_users_token_and_refuses_anothers(client, weights):
    path = signed_path(weights.holder, weights.files["config.json"])
    _, mine = token_create(user=weights.holder, name="mine", scopes=["downloads"])
    _, theirs = token_create(user=weights.outsider, name="theirs", scopes=["downloads"])
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {mine}").status_code == 200
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert response.status_code == 403 and "another account" in response.content.decode()


@pytest.mark.parametrize("problem", ["revoked", "expired", "deactivated", "wrong"])
def test_a_token_that_cannot_be_used_is_refused_with_its_reason(client, weights, problem):
    token, secret = token_create(user=weights.holder, name="cluster", scopes=["downloads"])
    if problem == "revoked":
        token_revoke(user=weights.holder, token_id=token.pk)
    elif problem == "expired":
        token.__class__.objects.filter(pk=token.pk).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
    elif problem == "deactivated":
        weights.holder.is_active = False
        weights.holder.save()
    else:
        secret = secret[:-1] + "0"
    response = client.get(
        f"/weights/{weights.gate.slug}/files/config.json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 401
    expected = {
        "revoked": "was revoked on",
        "expired": "expired on",
        "deactivated": "deactivated",
        "wrong": "not valid",
    }[problem]
    assert expected in response.content.decode()
    assert len(refusals()) == 1


def test_a_token_of_someone_without_the_weights_level_is_refused(client, weights):
    _, secret = token_create(user=weights.outsider, name="cluster", scopes=["downloads"])
    response = client.get(
        f"/weights/{weights.gate.slug}/files/config.json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 403
    assert "does not include weights" in response.content.decode()


@pytest.mark.parametrize("way", ["link", "token", "hub"])
@pytest.mark.parametrize(
    "header, reason",
    [
        ("bytes=300000-", "starts past the end of the file (300000 bytes)"),
        ("bytes=5-2", "last byte must not come before its first"),
        ("pages=0-10", "must be one range in bytes"),
    ],
)
def test_a_range_that_cannot_be_served_is_refused_with_416_and_recorded(
    client, weights, way, header, reason
):
    file = weights.files["model.safetensors"]
    path = signed_path(weights.holder, file) + ("?via=hub" if way == "hub" else "")
    extra = {"HTTP_RANGE": header, "REMOTE_ADDR": "198.51.100.7"}
    if way == "token":
        _, secret = token_create(user=weights.holder, name="cluster", scopes=["downloads"])
        path = f"/weights/{weights.gate.slug}/files/{file.name}"
        extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    response = client.get(path, **extra)
    assert response.status_code == 416
    assert reason in response.content.decode()
    [entry] = refusals()
    assert (entry.outcome, entry.subject_id, entry.gate_id, entry.target) == (
        "refused",
        weights.holder.pk,
        weights.gate.pk,
        str(file.pk),
    )
    assert reason in entry.detail["reason"] and entry.detail["range"] == header
    assert entry.detail["via"] == way and entry.ip == "198.51.100.7"
    assert not AuditEntry.objects.filter(action="download").exists()


def test_a_download_records_the_bytes_it_answered(client, weights):
    path = signed_path(weights.holder, weights.files["model.safetensors"])
    body(client.get(path))
    body(client.get(path, HTTP_RANGE="bytes=-1000"))
    sent = AuditEntry.objects.filter(action="download").values_list("detail__bytes", flat=True)
    assert sorted(sent) == [1000, 300_000]


def test_anonymous_browsers_are_sent_to_sign_in_and_curl_is_told_why(client, weights):
    url = f"/weights/{weights.gate.slug}/files/config.json"
    response = client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.get(url)
    assert response.status_code == 401
    assert "Sign in" in response.content.decode()


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", "%2E%2E/%2E%2E/settings.py", "a/%00/b", "a//b"]
)
def test_a_path_traversal_in_a_file_name_is_refused_and_recorded(client, weights, name):
    client.force_login(weights.holder)
    for url in (
        f"/weights/{weights.gate.slug}/files/{name}",
        f"/weights/d/{link_sign(user_id=weights.holder.pk, file_id='x')}/{name}",
    ):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "file name may not contain" in response.content.decode()
    assert len(refusals()) == 2


def test_attaching_a_file_verifies_its_checksum_and_size(tmp_path, settings, weights):
    sha = write_file(tmp_path, "extra.bin", b"weights")
    with pytest.raises(ValidationFailed, match="may be truncated or another file"):
        weight_file_attach(
            gate=weights.gate, name="extra.bin", storage_path="extra.bin", sha256="0" * 64
        )
    with pytest.raises(ValidationFailed, match="has 7 bytes, not 8"):
        weight_file_attach(gate=weights.gate, name="extra.bin", storage_path="extra.bin", size=8)
    with pytest.raises(ValidationFailed, match="no file at"):
        weight_file_attach(gate=weights.gate, name="gone.bin", storage_path="gone.bin")
    with pytest.raises(ValidationFailed, match="may not contain"):
        weight_file_attach(gate=weights.gate, name="x", storage_path="../outside.bin")
    assert not weights.gate.weight_files.filter(name__in=["extra.bin", "gone.bin", "x"]).exists()
    file = weight_file_attach(gate=weights.gate, name="extra.bin", storage_path="extra.bin")
    assert (file.size, file.sha256) == (7, sha)


def test_staff_download_without_a_grant_and_others_get_the_rules_reason(client, weights):
    staff = UserFactory(is_staff=True)
    assert client.get(signed_path(staff, weights.files["config.json"])).status_code == 200
    pending = UserFactory()
    GrantFactory(gate=weights.gate, user=pending, levels=["weights"], expires_at=timezone.now())
    response = client.get(signed_path(pending, weights.files["config.json"]))
    assert response.status_code == 403 and "expired on" in response.content.decode()


def test_the_gate_page_shows_holders_the_files_and_others_why_not(client, weights):
    client.force_login(weights.holder)
    page = client.get(f"/gates/{weights.gate.slug}/").content.decode()
    assert 'id="weight-files"' in page
    for file in weights.files.values():
        assert file.sha256 in page
    client.force_login(weights.outsider)
    page = client.get(f"/gates/{weights.gate.slug}/").content.decode()
    assert 'id="weight-files"' not in page and "does not include weights" in page
