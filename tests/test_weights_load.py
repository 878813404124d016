"""Weight files in the models YAML file: checksums verified, idempotent, refused whole."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import CommandError, call_command

from tests.weights import storages_for, write_file
from webapp.access.models import Gate
from webapp.weights.models import WeightFile

pytestmark = pytest.mark.django_db

YAML = """
gates:
  - slug: open-llm
    name: Open LLM
    levels:
      weights: {}
    weights:
      - name: model.safetensors
        path: open-llm/model.safetensors
        sha256: {sha}
      - name: config.json
        path: open-llm/config.json
models: []
"""


@pytest.fixture
def root(tmp_path, settings):
    settings.STORAGES = storages_for(tmp_path / "weights")
    write_file(tmp_path / "weights", "open-llm/config.json", b"{}")
    write_file(tmp_path / "weights", "open-llm/model.safetensors", b"\x00" * 1000)
    return tmp_path


def _load(root, text: str) -> None:
    path = root / "models.yaml"
    path.write_text(text)
    call_command("load_models", str(path))


def test_load_models_attaches_files_with_their_measured_checksums_idempotently(root):
    sha = hashlib.sha256(b"\x00" * 1000).hexdigest()
    _load(root, YAML.replace("{sha}", sha))
    _load(root, YAML.replace("{sha}", sha))
    files = {f.name: f for f in WeightFile.objects.all()}
    assert set(files) == {"model.safetensors", "config.json"}
    assert (files["model.safetensors"].size, files["model.safetensors"].sha256) == (1000, sha)
    assert files["config.json"].sha256 == hashlib.sha256(b"{}").hexdigest()

    _load(root, YAML.replace("{sha}", sha).split("      - name: config.json")[0] + "models: []\n")
    assert list(WeightFile.objects.values_list("name", flat=True)) == ["model.safetensors"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda y: y.replace("{sha}", f"'{'0' * 64}'"), "may be truncated or another file"),
        (lambda y: y.replace("{sha}", "0" * 64), "64 hexadecimal characters, in quotes"),
        (lambda y: y.replace("{sha}", "'a'"), "64 hexadecimal characters"),
        (lambda y: y.replace("{sha}", "''").replace("m/config.json", "m/gone.json"), "no file at"),
        (lambda y: y.replace("path: open-llm/config.json", "path: ../../etc/passwd"), "may not"),
        (lambda y: y.replace("path: open-llm/config.json", "size: many"), "name and path"),
    ],
)
def test_a_file_that_does_not_match_refuses_the_whole_load(root, change, message):
    with pytest.raises(CommandError, match=message):
        _load(root, change(YAML))
    assert not WeightFile.objects.exists() and not Gate.objects.exists()


def test_the_admin_verifies_a_files_checksum_when_it_is_attached(root, admin_client):
    from tests.factories import gate_factory

    gate = gate_factory(slug="admin-gate")
    form = {"gate": gate.pk, "name": "model.safetensors", "storage_path": "open-llm/config.json"}
    response = admin_client.post(
        "/admin/weights/weightfile/add/", {**form, "expected_sha256": "0" * 64}
    )
    assert response.status_code == 200 and "may be truncated or another file" in (
        response.content.decode()
    )
    assert not WeightFile.objects.exists()
    response = admin_client.post("/admin/weights/weightfile/add/", form)
    assert response.status_code == 302
    file = WeightFile.objects.get()
    assert (file.size, file.sha256) == (2, hashlib.sha256(b"{}").hexdigest())
    file_url = f"/admin/weights/weightfile/{file.pk}/change/"
    response = admin_client.post(file_url, {**form, "name": "renamed.json"})
    assert response.status_code == 302
    assert list(WeightFile.objects.values_list("name", flat=True)) == ["renamed.json"]
