"""Downloads against a real uvicorn on loopback, with the tools researchers use:
huggingface_hub (snapshot_download, hf_hub_download, the hf CLI), curl and wget."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from tests.weights import GATE_SLUG, storages_for, weights_build, weights_server
from webapp.access.models import AuditEntry, Grant
from webapp.accounts.tokens.services import token_create
from webapp.weights.links import link_sign

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, weights_root):
    with weights_server(weights_root, "downloads-web") as url:
        yield url


@pytest.fixture
def weights(settings, weights_root):
    settings.STORAGES = storages_for(weights_root)
    return weights_build(weights_root)


@pytest.fixture
def hf_env(tmp_path, monkeypatch):
    """huggingface_hub with a cache of its own and no saved token or telemetry."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return tmp_path / "cache"


def secret_of(user) -> str:
    return token_create(user=user, name="script", scopes=["downloads"])[1]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_snapshot_download_fetches_every_file_for_a_holder(site, weights, hf_env):
    folder = Path(
        snapshot_download(
            GATE_SLUG, endpoint=site, token=secret_of(weights.holder), cache_dir=hf_env
        )
    )
    for name, file in weights.files.items():
        assert sha256(folder / name) == file.sha256
    assert len(folder.name) == 40  # the snapshot of the commit the info call named
    downloads = AuditEntry.objects.filter(action="download", detail__via="hub")
    assert sorted(downloads.values_list("detail__file", flat=True)) == sorted(weights.files)


def test_hf_hub_download_fetches_one_file_and_resumes_nothing_when_cached(site, weights, hf_env):
    token = secret_of(weights.holder)
    path = hf_hub_download(
        GATE_SLUG, "model.safetensors", endpoint=site, token=token, cache_dir=hf_env
    )
    assert sha256(path) == weights.files["model.safetensors"].sha256
    again = hf_hub_download(
        GATE_SLUG, "model.safetensors", endpoint=site, token=token, cache_dir=hf_env
    )
    assert again == path
    assert AuditEntry.objects.filter(action="download").count() == 1  # the second only asked


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_people_without_the_weights_level_get_the_hubs_gated_repo_error(site, weights, hf_env, who):
    token = secret_of(weights.outsider) if who == "outsider" else None
    with pytest.raises(GatedRepoError, match="Cannot access gated repo"):
        snapshot_download(GATE_SLUG, endpoint=site, token=token, cache_dir=hf_env)
    with pytest.raises(GatedRepoError):
        hf_hub_download(GATE_SLUG, "config.json", endpoint=site, token=token, cache_dir=hf_env)
    assert AuditEntry.objects.filter(action="download_refused", detail__via="hub").count() == 2


def test_a_revoked_grant_ends_hub_downloads_at_once(site, weights, hf_env):
    token = secret_of(weights.holder)
    hf_hub_download(GATE_SLUG, "config.json", endpoint=site, token=token, cache_dir=hf_env)
    Grant.objects.filter(user=weights.holder).update(
        revoked_at=timezone.now(), revoke_reason="Shared outside the lab."
    )
    with pytest.raises(GatedRepoError) as caught:
        hf_hub_download(
            GATE_SLUG, "model.safetensors", endpoint=site, token=token, cache_dir=hf_env
        )
    assert "revoked" in caught.value.response.headers["X-Error-Message"]


def test_a_bad_token_and_a_missing_repo_get_the_hubs_errors(site, weights, hf_env):
    with pytest.raises(HfHubHTTPError) as caught:
        hf_hub_download(
            GATE_SLUG, "config.json", endpoint=site, token="gh_" + "x" * 40, cache_dir=hf_env
        )
    assert caught.value.response.status_code == 401
    response = httpx.get(
        f"{site}/api/models/{GATE_SLUG}", headers={"Authorization": "Bearer gh_" + "x" * 40}
    )
    assert response.status_code == 401 and "not valid" in response.json()["error"]
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("no-such-gate", endpoint=site, token=secret_of(weights.holder))


def test_the_model_info_call_lists_files_with_sizes_and_checksums(site, weights):
    headers = {"Authorization": f"Bearer {secret_of(weights.holder)}"}
    info = httpx.get(f"{site}/api/models/{GATE_SLUG}", headers=headers).json()
    assert info["id"] == GATE_SLUG and len(info["sha"]) == 40
    siblings = {s["rfilename"]: s for s in info["siblings"]}
    assert siblings["model.safetensors"]["lfs"]["sha256"] == (
        weights.files["model.safetensors"].sha256
    )
    by_sha = httpx.get(f"{site}/api/models/{GATE_SLUG}/revision/{info['sha']}", headers=headers)
    assert by_sha.json()["sha"] == info["sha"]
    other = httpx.get(f"{site}/api/models/{GATE_SLUG}/revision/{'0' * 40}", headers=headers)
    assert other.status_code == 404 and other.headers["X-Error-Code"] == "RevisionNotFound"
    head = httpx.head(f"{site}/{GATE_SLUG}/resolve/main/config.json", headers=headers)
    assert head.status_code == 302
    assert head.headers["X-Repo-Commit"] == info["sha"]
    assert head.headers["X-Linked-Etag"] == f'"{weights.files["config.json"].sha256}"'
    assert head.headers["X-Linked-Size"] == str(weights.files["config.json"].size)
    missing = httpx.head(f"{site}/{GATE_SLUG}/resolve/main/nope.bin", headers=headers)
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"


def cli(name: str) -> str:
    """The huggingface_hub command ``name`` beside this Python, or on the PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"this huggingface_hub has no {name} command")
    return found


@pytest.mark.parametrize("name", ["hf", "huggingface-cli"])  # the command and its older name
def test_the_hf_cli_downloads_with_hf_endpoint(site, weights, hf_env, tmp_path, name):
    command = [cli(name), "download", GATE_SLUG]
    command += ["--token", secret_of(weights.holder), "--local-dir", str(tmp_path / "out")]
    env = {**os.environ, "HF_ENDPOINT": site}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sha256(tmp_path / "out" / "model.safetensors") == (
        weights.files["model.safetensors"].sha256
    )


def _link(site, weights, name="model.safetensors") -> str:
    file = weights.files[name]
    return f"{site}/weights/d/{link_sign(user_id=weights.holder.pk, file_id=file.pk)}/{name}"


def test_curl_follows_the_token_url_and_resumes_with_a_range(site, weights, tmp_path):
    out = tmp_path / "model.safetensors"
    data = weights.data["model.safetensors"]
    out.write_bytes(data[:100_000])  # an interrupted download
    url = f"{site}/weights/{GATE_SLUG}/files/model.safetensors"
    auth = f"Authorization: Bearer {secret_of(weights.holder)}"
    subprocess.run(
        ["curl", "-fsSL", "-C", "-", "-H", auth, "-o", str(out), url], check=True, timeout=60
    )
    assert out.read_bytes() == data
    entry = AuditEntry.objects.get(action="download")
    assert entry.detail["range"] == "bytes=100000-" and entry.detail["status"] == 206


def test_wget_downloads_a_signed_link_without_a_session_and_continues_one(site, weights, tmp_path):
    out = tmp_path / "model.safetensors"
    data = weights.data["model.safetensors"]
    subprocess.run(["wget", "-q", "-O", str(out), _link(site, weights)], check=True, timeout=60)
    assert out.read_bytes() == data
    out.write_bytes(data[:123])
    subprocess.run(
        ["wget", "-q", "-c", "-O", str(out), _link(site, weights)], check=True, timeout=60
    )
    assert out.read_bytes() == data


def test_curl_is_told_why_a_link_is_refused(site, weights):
    link = _link(site, weights)[:-30] + "x" * 10 + "/model.safetensors"
    result = subprocess.run(["curl", "-sS", link], capture_output=True, text=True, timeout=30)
    assert "This download link is not valid" in result.stdout


def test_a_range_past_the_end_gets_416_from_the_server(site, weights):
    size = weights.files["model.safetensors"].size
    response = httpx.get(_link(site, weights), headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    entry = AuditEntry.objects.get(action="download_refused")
    assert entry.subject_id == weights.holder.pk and "past the end" in entry.detail["reason"]
