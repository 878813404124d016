"""Read weight files, and the repository view of a gate that the Hub API shows."""

from __future__ import annotations

import hashlib

from webapp.access.models import Gate

from .models import WeightFile


def gate_get(*, slug: str) -> Gate | None:
    return Gate.objects.filter(slug=slug).first()


def weight_file_list(*, gate: Gate) -> list[WeightFile]:
    return list(WeightFile.objects.filter(gate=gate))


def weight_file_get(*, gate: Gate, name: str) -> WeightFile | None:
    return WeightFile.objects.filter(gate=gate, name=name).first()


def gate_revision(*, files: list[WeightFile]) -> str:
    """Return a 40-hex commit id for the gate's current files (it changes when they do).

    huggingface_hub keeps a snapshot per commit id: a changed file set gets a new one.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for file in sorted(files, key=lambda f: f.name):
        digest.update(f"{file.name}\0{file.sha256}\0{file.size}\n".encode())
    return digest.hexdigest()
