"""A weight file of a gate: its name in the repository, size, SHA-256, and where it is stored."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from webapp.core.models import BaseModel

# One path segment of a file name: no separators, no control characters.
_SEGMENT = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,255}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def file_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a file (traversal, absolute, empty parts…), or None."""
    if not name or len(name) > 500:
        return "A file name must have 1 to 500 characters."
    if name.startswith("/") or "\\" in name:
        return "A file name must be a relative path with / between folders."
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            return "A file name may not contain empty, '.' or '..' parts."
        if not _SEGMENT.match(segment):
            return "A file name may not contain control characters."
    return None


def validate_file_name(name: str) -> None:
    if problem := file_name_problem(name):
        raise ValidationError(problem)


def validate_sha256(value: str) -> None:
    if not SHA256.match(value):
        raise ValidationError("A SHA-256 is 64 lowercase hexadecimal characters.")


class WeightFile(BaseModel):
    gate = models.ForeignKey("access.Gate", on_delete=models.CASCADE, related_name="weight_files")
    name = models.CharField(
        max_length=500,
        validators=[validate_file_name],
        help_text="The file's path in the repository, e.g. model-00001-of-00002.safetensors.",
    )
    size = models.BigIntegerField(help_text="Bytes; measured when the file is attached.")
    sha256 = models.CharField(max_length=64, validators=[validate_sha256])
    storage_path = models.CharField(
        max_length=1000,
        validators=[validate_file_name],
        help_text="Where the file is in the weights storage (WEIGHTS_STORAGE_*).",
    )

    class Meta:
        ordering = ["gate", "name"]
        constraints = [
            models.UniqueConstraint(fields=["gate", "name"], name="weights_file_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]
