"""Write access to the catalog: models and their endpoints, from the admin or a YAML file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from inference.params import ParamsError, params_parse

from .models import AccessPolicy, BackendKind, LanguageModel, ModelEndpoint, validate_endpoint_url

# The fields a model definition may set, besides its slug and endpoints (the admin shows them too).
MODEL_FIELDS = (
    "display_name",
    "description",
    "licence_name",
    "licence_url",
    "backend",
    "backend_model",
    "default_params",
    "context_length",
    "access_policy",
    "is_active",
    "position",
)


class ModelSpecError(ValueError):
    """A model definition cannot be loaded; the message names the model and the field."""


def model_params_check(*, backend: str, params: Mapping[str, Any], context_length: int) -> None:
    """Raise ModelSpecError if ``params`` are outside ``backend``'s ranges."""
    try:
        params_parse(params, backend=backend, context_length=context_length)  # type: ignore[arg-type]
    except ParamsError as exc:
        raise ModelSpecError(f"default_params: {exc}") from exc


@transaction.atomic
def model_upsert(*, spec: Mapping[str, Any]) -> tuple[LanguageModel, bool]:
    """Create or update the model ``spec["slug"]`` and replace its endpoints.

    Endpoints not named any more are deactivated rather than deleted; an endpoint
    named without ``api_key`` keeps the key it had.
    """
    slug, fields, endpoints = _parse_spec(spec)
    model, created = LanguageModel.objects.update_or_create(slug=slug, defaults=fields)
    kept = []
    for endpoint in endpoints:
        defaults: dict[str, Any] = {"is_active": True}
        if "api_key" in endpoint:
            defaults["api_key"] = endpoint["api_key"]
        row, _ = ModelEndpoint.objects.update_or_create(
            model=model, url=endpoint["url"], defaults=defaults
        )
        kept.append(row.pk)
    model.endpoints.exclude(pk__in=kept).update(is_active=False)
    return model, created


def model_load_many(*, specs: list[Mapping[str, Any]]) -> list[tuple[LanguageModel, bool]]:
    """Upsert every spec, all or nothing."""
    if not isinstance(specs, list):
        raise ModelSpecError("The file must hold a list of models under 'models:'.")
    with transaction.atomic():
        return [model_upsert(spec=spec) for spec in specs]


def _parse_spec(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, str]]]:
    if not isinstance(spec, Mapping):
        raise ModelSpecError("Each model must be a mapping of fields.")
    slug = str(spec.get("slug") or "")
    if not slug or slugify(slug) != slug:
        raise ModelSpecError(f"slug {slug!r}: use lowercase letters, digits and hyphens.")
    unknown = set(spec) - set(MODEL_FIELDS) - {"slug", "endpoints"}
    if unknown:
        raise ModelSpecError(f"{slug}: unknown field(s) {', '.join(sorted(unknown))}.")
    fields = {key: spec[key] for key in MODEL_FIELDS if key in spec}
    fields.setdefault("display_name", slug)
    if fields.get("backend") not in BackendKind.values:
        raise ModelSpecError(f"{slug}: backend must be one of {', '.join(BackendKind.values)}.")
    policy = fields.setdefault("access_policy", AccessPolicy.REGISTERED)
    if policy not in AccessPolicy.values:
        raise ModelSpecError(
            f"{slug}: access_policy must be one of {', '.join(AccessPolicy.values)}."
        )
    try:
        model_params_check(
            backend=fields["backend"],
            params=fields.get("default_params") or {},
            context_length=int(fields.get("context_length", 4096)),
        )
    except (ModelSpecError, TypeError, ValueError) as exc:
        raise ModelSpecError(f"{slug}: {exc}") from exc
    return slug, fields, _parse_endpoints(slug, spec.get("endpoints"))


def _parse_endpoints(slug: str, raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise ModelSpecError(f"{slug}: endpoints must be a non-empty list.")
    endpoints = []
    for item in raw:
        endpoint = {"url": item} if isinstance(item, str) else dict(item or {})
        try:
            validate_endpoint_url(endpoint.get("url", ""))
        except ValidationError as exc:
            raise ModelSpecError(
                f"{slug}: endpoint URL {endpoint.get('url')!r} is not valid."
            ) from exc
        endpoints.append(
            {k: "" if v is None else str(v) for k, v in endpoint.items() if k in ("url", "api_key")}
        )
    return endpoints
