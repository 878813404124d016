"""Write access to the catalog: models and their endpoints, from the admin or a YAML file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from inference.params import ParamsError, params_parse
from webapp.access.models import Gate
from webapp.accounts import revocation
from webapp.core.validation import field_errors

from .models import LanguageModel, ModelEndpoint

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
ENDPOINT_FIELDS = ("url", "api_key", "max_concurrent")
# A change to one of these changes who may use the model.
ACCESS_FIELDS = ("access_policy", "is_active", "gate_id")


class ModelSpecError(ValueError):
    """Model definitions cannot be loaded; each message names the model and the field."""

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


def model_params_check(*, backend: str, params: Mapping[str, Any], context_length: int) -> None:
    """Raise ModelSpecError if ``params`` are outside ``backend``'s ranges."""
    if not isinstance(params, Mapping):
        raise ModelSpecError("default_params: must be a mapping of sampling parameters.")
    try:
        params_parse(params, backend=backend, context_length=context_length)  # type: ignore[arg-type]
    except ParamsError as exc:
        raise ModelSpecError(f"default_params: {exc}") from exc


def model_upsert(*, spec: Mapping[str, Any]) -> tuple[LanguageModel, bool]:
    """Create or update the model ``spec["slug"]`` and replace its endpoints.

    Endpoints not named any more are deactivated rather than deleted; an endpoint
    named without ``api_key`` keeps the key it had.
    """
    [result] = model_load_many(specs=[spec])
    return result


def model_load_many(*, specs: Any) -> list[tuple[LanguageModel, bool]]:
    """Upsert every spec, all or nothing (see ``catalog_load``)."""
    return catalog_load(models=specs)[1]


def catalog_load(
    *, models: Any, gates: Any = None
) -> tuple[list[tuple[Gate, bool]], list[tuple[LanguageModel, bool]]]:
    """Upsert every gate, then every model, all or nothing.

    Every field is validated as the admin validates it (``full_clean``: types,
    lengths, choices, URLs), and the ModelSpecError raised lists every problem of
    every spec; nothing is written unless all of them are valid (gates are saved
    first, so models can name them, and rolled back with the rest).
    """
    from webapp.access.services.load import gate_load_many
    from webapp.weights.load import weight_load_many

    if models is None and gates is not None:
        models = []
    if not isinstance(models, list):
        raise ModelSpecError("The file must hold a list of models under 'models:'.")
    with transaction.atomic():
        loaded, errors = gate_load_many(specs=gates)
        by_slug = {gate.slug: gate for gate, _ in loaded}
        errors += weight_load_many(specs=gates, gates=by_slug)
        plans, slugs = [], set()
        for spec in models:
            try:
                plans.append(_plan(spec, slugs, by_slug))
            except ModelSpecError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ModelSpecError(*errors)
        return loaded, [_plan_save(plan) for plan in plans]


@dataclass(frozen=True)
class _Endpoint:
    """An endpoint as the file gives it; None keeps what is saved (a key set in the admin)."""

    url: str
    api_key: str | None
    max_concurrent: int | None
    sets_capacity: bool  # the file names max_concurrent (blank or null: TGI's figure)


@dataclass
class _Plan:
    """A validated model, not saved yet, and its endpoints."""

    model: LanguageModel
    endpoints: list[_Endpoint]
    access_changed: bool = False


def _plan(spec: Any, slugs: set[str], gates: Mapping[str, Gate] | None = None) -> _Plan:
    if not isinstance(spec, Mapping):
        raise ModelSpecError("Each model must be a mapping of fields.")
    slug = str(spec.get("slug") or "")
    if not slug or slugify(slug) != slug:
        raise ModelSpecError(f"slug {slug!r}: use lowercase letters, digits and hyphens.")
    if slug in slugs:
        raise ModelSpecError(f"{slug}: slug: appears more than once in the file.")
    slugs.add(slug)
    errors = []
    unknown = set(spec) - set(MODEL_FIELDS) - {"slug", "endpoints", "gate"}
    if unknown:
        errors.append(f"{slug}: unknown field(s) {', '.join(sorted(unknown))}.")
    model = LanguageModel.objects.filter(slug=slug).first() or LanguageModel(
        slug=slug, display_name=slug
    )
    before = _access_fields(model)
    for key in MODEL_FIELDS:
        if key in spec:
            setattr(model, key, spec[key])
    if "gate" in spec:
        model.gate, gate_error = _gate(spec["gate"], gates or {})
        errors += [f"{slug}: gate: {gate_error}"] if gate_error else []
    errors += _model_errors(slug, model)
    endpoints, endpoint_errors = _endpoints(slug, spec.get("endpoints"))
    errors += endpoint_errors
    if errors:
        raise ModelSpecError(*errors)
    changed = not model._state.adding and _access_fields(model) != before
    return _Plan(model=model, endpoints=endpoints, access_changed=changed)


def _access_fields(model: LanguageModel) -> tuple[Any, ...]:
    return tuple(getattr(model, name) for name in ACCESS_FIELDS)


def _model_errors(slug: str, model: LanguageModel) -> list[str]:
    problems = field_errors(model)
    errors = [f"{slug}: {field}: {message}" for field, message in problems]
    # model_params_check reads these fields: it can only run once they are valid themselves.
    if not {field for field, _ in problems} & {"backend", "context_length", "default_params"}:
        try:
            model_params_check(
                backend=model.backend,
                params=model.default_params,
                context_length=model.context_length,
            )
        except ModelSpecError as exc:
            errors.append(f"{slug}: {exc}")
    return errors


def _gate(value: Any, gates: Mapping[str, Gate]) -> tuple[Gate | None, str]:
    """The gate a model names by slug: one in the same file, or one already saved."""
    if value is None:
        return None, ""
    gate = gates.get(str(value)) or Gate.objects.filter(slug=str(value)).first()
    return gate, "" if gate else f"no gate {value!r} in the file or the database."


def _endpoints(slug: str, raw: Any) -> tuple[list[_Endpoint], list[str]]:
    if not isinstance(raw, list) or not raw:
        return [], [f"{slug}: endpoints: must be a non-empty list."]
    endpoints: list[_Endpoint] = []
    errors = []
    for index, item in enumerate(raw):
        where = f"{slug}: endpoints[{index}]"
        fields = {"url": item} if isinstance(item, str) else item
        if not isinstance(fields, Mapping):
            errors.append(f"{where}: must be a URL or a mapping with url and api_key.")
            continue
        if unknown := set(fields) - set(ENDPOINT_FIELDS):
            errors.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}.")
        values = {k: "" if v is None else v for k, v in fields.items() if k in ENDPOINT_FIELDS}
        values = {k: v if k == "max_concurrent" else str(v) for k, v in values.items()}
        endpoint = ModelEndpoint(
            **{**values, "max_concurrent": values.get("max_concurrent") or None}
        )
        problems = field_errors(endpoint, exclude=["model"])
        if endpoint.url in (known.url for known in endpoints):
            problems.append(("url", f"{endpoint.url!r} is listed twice."))
        errors += [f"{where}.{field}: {message}" for field, message in problems]
        endpoints.append(
            _Endpoint(
                url=endpoint.url,
                api_key=endpoint.api_key if "api_key" in values else None,
                max_concurrent=endpoint.max_concurrent if not problems else None,
                sets_capacity="max_concurrent" in values,
            )
        )
    return endpoints, errors


def _plan_save(plan: _Plan) -> tuple[LanguageModel, bool]:
    model, created = plan.model, plan.model._state.adding
    model.save()
    kept = []
    for endpoint in plan.endpoints:
        defaults: dict[str, Any] = {"is_active": True}
        if endpoint.sets_capacity:
            defaults["max_concurrent"] = endpoint.max_concurrent
        if endpoint.api_key is not None:
            defaults["api_key"] = endpoint.api_key
        row, _ = ModelEndpoint.objects.update_or_create(
            model=model, url=endpoint.url, defaults=defaults
        )
        kept.append(row.pk)
    model.endpoints.exclude(pk__in=kept).update(is_active=False)
    if plan.access_changed:
        model_access_changed(model=model)
    return model, created


def model_access_changed(*, model: LanguageModel) -> None:
    """Who may use ``model`` changed (its policy, its gate, or it was taken out of service):
    every open page watching a conversation with it is told, once the change commits."""
    revocation.model_changed(model.pk)
