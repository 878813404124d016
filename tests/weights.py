"""A gate with weight files in a folder of their own, a holder of its weights level and others."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.factories import GrantFactory, UserFactory, gate_factory
from webapp.weights.services import weight_file_attach

GATE_SLUG = "open-llm"


def storages_for(root: Path) -> dict:
    """The STORAGES setting with the weights storage in ``root``."""
    from django.conf import settings

    weights = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    return {**settings.STORAGES, "weights": {**weights, "OPTIONS": {"location": str(root)}}}


def write_file(root: Path, name: str, data: bytes) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@dataclass
class Weights:
    gate: object
    files: dict  # name -> WeightFile
    data: dict  # name -> bytes
    holder: object
    outsider: object


def weights_build(root: Path, *, slug: str = GATE_SLUG) -> Weights:
    """Attach a small model's files to a new gate; ``root`` must be the weights storage."""
    data = {
        "config.json": b'{"model_type": "llama", "hidden_size": 64}\n',
        "model.safetensors": os.urandom(300_000),
        "tokenizer/tokenizer.json": b'{"version": "1.0"}\n',
    }
    gate = gate_factory(slug=slug, name="Open LLM")
    files = {}
    for name, body in data.items():
        sha = write_file(root, f"{slug}/{name}", body)
        files[name] = weight_file_attach(
            gate=gate, name=name, storage_path=f"{slug}/{name}", sha256=sha
        )
    holder = UserFactory(email="holder@example.org")
    GrantFactory(gate=gate, user=holder, levels=["chat", "weights"])
    outsider = UserFactory(email="outsider@example.org")
    GrantFactory(gate=gate, user=outsider, levels=["chat"])
    return Weights(gate, files, data, holder, outsider)


@contextmanager
def weights_server(root: Path, name: str) -> Iterator[str]:
    """uvicorn on loopback with its weights storage in ``root``; yields its URL."""
    from tests import services

    port = services.free_port()
    env = {**services.test_database_env(), "WEIGHTS_ROOT": str(root)}
    server = services.asgi_server(port, env=env, name=name).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
