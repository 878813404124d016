"""Model validation as plain messages, for loaders that report every problem at once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Model


def field_errors(instance: Model, exclude: list[str] | None = None) -> list[tuple[str, str]]:
    """Return ``instance.full_clean()``'s errors as (field, message) pairs."""
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        # dict.fromkeys: two validators of one field (licence_url's) may say the same thing.
        return list(
            dict.fromkeys(
                (field, _message(instance, field, error))
                for field, field_errors in exc.error_dict.items()
                for error in field_errors
            )
        )
    return []


def _message(instance: Model, field: str, error: ValidationError) -> str:
    if error.code == "invalid_choice" and field in {f.name for f in instance._meta.fields}:
        choices = instance._meta.get_field(field).choices or []
        return f"must be one of {', '.join(str(value) for value, _ in choices)}."
    return " ".join(error.messages)
