"""Write access for the playground: start a completion, save and delete presets, and
render a list of messages with the model's chat template."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction

from inference.backends import BackendError, ChatMessage, Endpoint, Timeouts, backend_for
from inference.params import ParamsError, params_parse
from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import AccessRefused, access_refusal
from webapp.catalog.selectors import model_get
from webapp.core.errors import ApplicationError, NotFound, ValidationFailed
from webapp.generations.models import Generation, Origin
from webapp.generations.services import generation_create

from .models import PlaygroundPreset
from .selectors import ACTION, playground_models, preset_get

PRESET_NAME_LENGTH = 80
MAX_TEMPLATE_MESSAGES = 100
ROLES = ("system", "user", "assistant")
RENDER_TIMEOUT = 30.0


def playground_model(*, user: Any, slug: Any) -> LanguageModel:
    """Return the model ``slug`` if the playground offers it to ``user``; raise
    AccessRefused (with the rule's reason) for a model the rule refuses them."""
    for model in playground_models(user=user):
        if model.slug == slug:
            return model
    found = model_get(slug=slug) if isinstance(slug, str) else None
    refusal = found and access_refusal(user=user, model_or_gate=found, action=ACTION)
    if found is not None and refusal:
        raise AccessRefused(refusal, model=found, action=ACTION)
    raise NotFound("There is no such model in the playground.")


def playground_group(user_id: Any) -> str:
    """Return the group a user's playground completions are announced on: one for all of
    them, so a page that runs many follows one group (a socket follows at most 64)."""
    return f"playground.{user_id}"


def playground_complete(*, user: Any, slug: Any, prompt: Any, params: Any) -> Generation:
    """Start a raw completion of ``prompt``: the model's defaults under ``params``."""
    model = playground_model(user=user, slug=slug)
    if not isinstance(prompt, str):
        raise ValidationFailed("The prompt must be text.")
    with transaction.atomic():
        return generation_create(
            user=user,
            model=model,
            origin=Origin.PLAYGROUND,
            prompt=prompt,
            params=_mapping(params),
            group=playground_group(user.pk),
        )


def _mapping(params: Any) -> Mapping[str, Any]:
    if not isinstance(params, dict):
        raise ValidationFailed("The parameters must be a JSON object.", code="invalid_params")
    return params


def playground_params(*, model: LanguageModel, params: Any) -> dict[str, Any]:
    """Return ``params`` checked for ``model``'s raw completion, as they would be sent."""
    try:
        parsed = params_parse(
            {**model.default_params, **_mapping(params)},
            backend=model.backend,  # type: ignore[arg-type]
            context_length=model.context_length,
            completion=True,
        )
    except ParamsError as exc:
        raise ValidationFailed(str(exc), code="invalid_params") from exc
    return parsed.as_dict()


def preset_save(*, user: Any, name: Any, slug: Any, prompt: Any, params: Any) -> PlaygroundPreset:
    """Save the playground's model, prompt and parameters under ``name`` (the same name
    again replaces them)."""
    name = name.strip() if isinstance(name, str) else ""
    if not 0 < len(name) <= PRESET_NAME_LENGTH:
        raise ValidationFailed(f"Name the preset (1 to {PRESET_NAME_LENGTH} characters).")
    model = playground_model(user=user, slug=slug)
    if not isinstance(prompt, str) or "\x00" in prompt:
        raise ValidationFailed("The prompt must be text.")
    playground_params(model=model, params=params)  # refused here, not when loaded
    try:
        preset, _ = PlaygroundPreset.objects.update_or_create(
            user=user,
            name=name,
            defaults={"language_model": model, "prompt": prompt, "params": dict(params)},
        )
    except IntegrityError as exc:  # the same name saved at once from another tab
        raise ValidationFailed(f"A preset named {name!r} was saved meanwhile.") from exc
    return preset


def preset_delete(*, user: Any, preset_id: Any) -> None:
    preset = preset_get(user=user, preset_id=preset_id)
    if preset is None:
        raise NotFound("There is no such preset.")
    preset.delete()


def chat_template_render(*, user: Any, slug: Any, messages: Any) -> str:
    """Return the prompt ``messages`` make in the model's chat template, as its server
    renders it (TGI's ``/chat_tokenize``)."""
    model = playground_model(user=user, slug=slug)  # the access rule decided what it offers
    checked = _messages(messages)
    endpoint = model.endpoints.filter(is_active=True).order_by("-healthy", "created_at").first()
    if endpoint is None:
        raise ValidationFailed("This model has no server configured right now.")
    limits = settings.GENERATION
    backend = backend_for(
        Endpoint(
            kind=model.backend,  # type: ignore[arg-type]
            url=endpoint.url,
            api_key=endpoint.api_key,
            model=model.backend_model,
            id=str(endpoint.pk),
        ),
        timeouts=Timeouts(connect=limits["CONNECT_TIMEOUT"], total=RENDER_TIMEOUT),
    )
    try:
        text = async_to_sync(backend.render)(checked)
    except BackendError as exc:
        raise ApplicationError(exc.detail, code=exc.code) from exc
    if text is None:
        raise ValidationFailed(
            f"{model.display_name}'s server cannot show its chat template: only a TGI "
            "server renders it (/chat_tokenize)."
        )
    return text


def _messages(value: Any) -> list[ChatMessage]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_TEMPLATE_MESSAGES:
        raise ValidationFailed(f"Give 1 to {MAX_TEMPLATE_MESSAGES} messages, as a JSON list.")
    checked: list[ChatMessage] = []
    for index, item in enumerate(value, 1):
        role = item.get("role") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        if role not in ROLES or not isinstance(content, str):
            raise ValidationFailed(
                f'Message {index} must be {{"role": "system", "user" or "assistant", '
                '"content": text}.'
            )
        if len(content) > settings.CHAT_MAX_MESSAGE_CHARS or "\x00" in content:
            raise ValidationFailed(f"Message {index} is too long or holds a NUL character.")
        checked.append({"role": role, "content": content})
    return checked
