"""Attach weight files to gates (their checksum verified) and record downloads in the audit log."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import Storage, storages
from django.db import transaction

from webapp.access.models import AuditEntry, AuditOutcome, Gate
from webapp.access.services.audit import Caller, audit_record
from webapp.core.errors import ValidationFailed

from .models import WeightFile, file_name_problem

READ_CHUNK = 4 * 1024 * 1024


def weights_storage() -> Storage:
    return storages["weights"]


def file_measure(*, storage_path: str) -> tuple[int, str]:
    """Return the size and SHA-256 of a stored file, read in chunks (any size, little memory)."""
    if problem := file_name_problem(storage_path):
        raise ValidationFailed(f"storage path: {problem}")
    storage = weights_storage()
    try:
        handle = storage.open(storage_path, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise ValidationFailed(
            f"storage path: no file at {storage_path!r} in the storage."
        ) from exc
    digest, size = hashlib.sha256(), 0
    with handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def weight_file_verify(
    *, name: str, storage_path: str, sha256: str = "", size: int | None = None
) -> tuple[int, str]:
    """Read the stored file whole and return its size and SHA-256.

    ``sha256`` and ``size``, when given (from the model card or the YAML file),
    must match what was read: a truncated upload or a wrong file is refused.
    """
    if problem := file_name_problem(name):
        raise ValidationFailed(f"name: {problem}")
    measured_size, measured_sha = file_measure(storage_path=storage_path)
    if sha256 and sha256.strip().lower() != measured_sha:
        raise ValidationFailed(
            f"{name}: the stored file's SHA-256 is {measured_sha}, not {sha256.strip().lower()}: "
            "it may be truncated or another file."
        )
    if size is not None and size != measured_size:
        raise ValidationFailed(f"{name}: the stored file has {measured_size} bytes, not {size}.")
    return measured_size, measured_sha


def weight_file_save(
    *,
    gate: Gate,
    name: str,
    storage_path: str,
    size: int,
    sha256: str,
    file: WeightFile | None = None,
) -> WeightFile:
    """Save ``file`` (or ``gate``'s file ``name``) with figures ``weight_file_verify`` measured."""
    fields = {"size": size, "sha256": sha256, "storage_path": storage_path}
    with transaction.atomic():
        if file is None:
            file, _ = WeightFile.objects.update_or_create(gate=gate, name=name, defaults=fields)
            return file
        for key, value in {"gate": gate, "name": name, **fields}.items():
            setattr(file, key, value)
        file.save()
    return file


def weight_file_attach(
    *, gate: Gate, name: str, storage_path: str, sha256: str = "", size: int | None = None
) -> WeightFile:
    """Verify the stored file (see ``weight_file_verify``), then attach it to ``gate``."""
    measured_size, measured_sha = weight_file_verify(
        name=name, storage_path=storage_path, sha256=sha256, size=size
    )
    return weight_file_save(
        gate=gate, name=name, storage_path=storage_path, size=measured_size, sha256=measured_sha
    )


def download_record(
    *,
    gate: Gate | None,
    user: Any,
    outcome: str,
    via: str,
    request: Any,
    file: WeightFile | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append a download, or a refused attempt at one, to the audit log."""
    user = user if getattr(user, "is_authenticated", False) else None
    return audit_record(
        action="download" if outcome == AuditOutcome.OK else "download_refused",
        outcome=outcome,
        gate=gate,
        actor=user,
        subject=user,
        target=file.pk if file else "",
        detail={"via": via, "method": request.method, "file": file.name if file else None}
        | (detail or {}),
        caller=Caller.of(request),
    )
