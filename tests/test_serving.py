"""Serving a stored file: ranges, If-Range, 416, HEAD, and handing the transfer off."""

from __future__ import annotations

import pytest
from django.core.files.storage import FileSystemStorage

from tests.test_downloads import body, refusals, signed_path
from tests.weights import storages_for, weights_build
from webapp.access.models import AuditEntry
from webapp.weights.serving import RangeNotSatisfiable, range_parse

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::Warning")]


@pytest.fixture
def weights(tmp_path, settings):
    settings.STORAGES = storages_for(tmp_path)
    return weights_build(tmp_path)


@pytest.fixture
def model(weights):
    file = weights.files["model.safetensors"]
    return file, weights.data[file.name], signed_path(weights.holder, file)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes = 3 - 4", (3, 4)),
    ],
)
def test_a_single_range_is_read_as_rfc_9110_says(header, expected):
    assert range_parse(header, 100) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=5-2", "bytes=-0", "bytes=-", "items=0-1", "bytes=0-1,5-6", "x"]
)
def test_a_malformed_or_unsatisfiable_range_is_refused(header):
    with pytest.raises(RangeNotSatisfiable):
        range_parse(header, 100)


def test_a_range_request_resumes_a_download_with_206(client, model):
    file, data, path = model
    response = client.get(path, HTTP_RANGE="bytes=1000-")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 1000-{file.size - 1}/{file.size}"
    assert response["Content-Length"] == str(file.size - 1000)
    assert body(response) == data[1000:]
    response = client.get(path, HTTP_RANGE="bytes=10-19")
    assert body(response) == data[10:20] and response["Content-Length"] == "10"
    [entry, _] = AuditEntry.objects.filter(action="download").order_by("-id")
    assert entry.detail["range"] == "bytes=10-19" and entry.detail["status"] == 206


def test_if_range_with_the_current_etag_gets_the_range_and_an_old_one_the_whole_file(client, model):
    file, data, path = model
    response = client.get(path, HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE=f'"{file.sha256}"')
    assert response.status_code == 206 and body(response) == data[:100]
    response = client.get(path, HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE='"an-older-version"')
    assert response.status_code == 200 and body(response) == data
    response = client.get(path, HTTP_RANGE="bytes=0-99", HTTP_IF_RANGE=f'W/"{file.sha256}"')
    assert response.status_code == 200  # a weak tag never matches If-Range


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("bytes=abc", "must be one range in bytes"),
        ("bytes=5-2", "must not come before its first"),
        ("bytes=0-1,4-5", "must be one range in bytes"),
        ("lines=1-2", "must be one range in bytes"),
    ],
)
def test_a_malformed_range_gets_416_with_a_reason(client, model, header, reason):
    file, _, path = model
    response = client.get(path, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{file.size}"
    assert reason in response.content.decode()
    assert not AuditEntry.objects.filter(action="download").exists()


def test_a_range_past_the_end_gets_416(client, model):
    file, _, path = model
    response = client.get(path, HTTP_RANGE=f"bytes={file.size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{file.size}"
    assert "starts past the end" in response.content.decode()


def test_head_tells_size_and_etag_without_a_body_and_is_not_counted(client, model):
    file, _, path = model
    response = client.head(path)
    assert response.status_code == 200
    assert response["Content-Length"] == str(file.size) and response.content == b""
    assert response["ETag"] == f'"{file.sha256}"'
    assert not AuditEntry.objects.filter(action="download").exists()


def test_a_copy_the_client_already_holds_gets_304(client, model):
    file, _, path = model
    assert client.get(path, HTTP_IF_NONE_MATCH=f'"{file.sha256}"').status_code == 304


def test_x_accel_redirect_hands_the_file_to_nginx(client, model, settings):
    file, _, path = model
    settings.WEIGHTS = {**settings.WEIGHTS, "DELIVERY": "accel", "ACCEL_PREFIX": "/_weights/"}
    response = client.get(path)
    assert response["X-Accel-Redirect"] == f"/_weights/{file.storage_path}"
    assert response.content == b"" and response["ETag"] == f'"{file.sha256}"'
    assert AuditEntry.objects.filter(action="download").count() == 1


class PresigningStorage(FileSystemStorage):
    """Stands in for an object store whose url() signs (django-storages' S3, GCS, Azure)."""

    def url(self, name, expire=None):
        return f"https://objects.example.org/{name}?X-Expires={expire}"


def test_a_storage_that_presigns_gets_a_redirect_to_its_url(client, weights, tmp_path, settings):
    file = weights.files["config.json"]
    settings.STORAGES = {
        **settings.STORAGES,
        "weights": {
            "BACKEND": "tests.test_serving.PresigningStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    settings.WEIGHTS = {**settings.WEIGHTS, "DELIVERY": "presigned", "PRESIGNED_MAX_AGE": 60}
    response = client.get(signed_path(weights.holder, file))
    assert response.status_code == 302
    assert response["Location"] == f"https://objects.example.org/{file.storage_path}?X-Expires=60"


def test_a_refused_link_never_reaches_the_storage(client, weights):
    file = weights.files["config.json"]
    response = client.get(signed_path(weights.outsider, file), HTTP_RANGE="bytes=0-1")
    assert response.status_code == 403 and len(refusals()) == 1
