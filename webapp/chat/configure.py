"""Write access to a conversation's settings (system prompt, parameters, model, the branch
shown) and presets.

Parameters are checked with the backend's own rules (``inference.params``)
against the conversation's model; a value out of range changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inference.params import ParamsError, params_parse
from webapp.catalog.models import LanguageModel
from webapp.catalog.selectors import model_get_usable
from webapp.core.errors import NotFound, PermissionDenied, ValidationFailed
from webapp.core.ids import is_uuid

from .models import Conversation, Preset
from .selectors import conversation_get

PRESET_NAME_LENGTH = 80


def params_clean(*, model: LanguageModel, params: Any) -> dict[str, Any]:
    """Return the overrides in ``params`` as ``model``'s backend will receive them.

    Raises ValidationFailed (code ``invalid_params``) naming the first bad value.
    """
    if not isinstance(params, dict):
        raise ValidationFailed("The parameters must be an object.", code="invalid_params")
    try:
        parsed = params_parse(
            {**model.default_params, **params},
            backend=model.backend,  # type: ignore[arg-type]
            context_length=model.context_length,
        )
    except ParamsError as exc:
        raise ValidationFailed(str(exc), code="invalid_params") from exc
    sent = parsed.as_dict()
    return {name: sent[name] for name in params if name in sent}


def system_prompt_clean(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("The system prompt must be text.")
    if "\x00" in value:
        raise ValidationFailed("The system prompt contains a NUL character.")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(value) > limit:
        raise ValidationFailed(f"The system prompt is too long (at most {limit} characters).")
    return value.strip()


def conversation_configure(
    *,
    user: Any,
    conversation_id: Any,
    system_prompt: Any,
    params: Any,
    model_slug: str | None = None,
) -> Conversation:
    """Set the conversation's system prompt, parameters and model; all are checked first.

    The new settings apply to the replies asked for from now on; a switch of
    model is checked against the user's access and re-checks the parameters.
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    model = conversation.model
    if model_slug and model_slug != model.slug:
        found = model_get_usable(user=user, slug=model_slug, action="chat")
        if found is None:
            raise ValidationFailed("Choose a model you have access to.", code="invalid_model")
        model = found
    conversation.system_prompt = system_prompt_clean(system_prompt)
    conversation.params = params_clean(model=model, params=params)
    conversation.model = model
    conversation.save(update_fields=["system_prompt", "params", "model", "updated_at"])
    return conversation


def conversation_select(*, user: Any, conversation_id: Any, leaf_id: Any) -> None:
    """Remember ``leaf_id`` as the branch the user views: the page reopens on it."""
    if not is_uuid(conversation_id) or not is_uuid(leaf_id) or not user.is_authenticated:
        raise NotFound("There is no such message in this conversation.")
    updated = Conversation.objects.filter(
        pk=conversation_id, user=user, messages__id=leaf_id
    ).update(current_leaf_id=leaf_id)
    if not updated:
        raise NotFound("There is no such message in this conversation.")


def preset_create(*, user: Any, conversation_id: Any, name: Any, public: bool = False) -> Preset:
    """Save the conversation's system prompt and parameters under ``name``.

    Only staff may publish (``public``) a preset for every user.
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > PRESET_NAME_LENGTH:
        raise ValidationFailed(f"Name the preset (1 to {PRESET_NAME_LENGTH} characters).")
    if public and not user.is_staff:
        raise PermissionDenied("Only staff may publish presets.")
    try:
        with transaction.atomic():
            return Preset.objects.create(
                user=user,
                name=name,
                system_prompt=conversation.system_prompt,
                params=conversation.params,
                public=public,
            )
    except IntegrityError as exc:
        raise ValidationFailed(f"You have a preset named {name!r} already.") from exc


def preset_publish(*, user: Any, preset_id: Any, public: bool) -> Preset:
    """Publish a preset of one's own for everyone, or take it back (staff only)."""
    if not user.is_staff:
        raise PermissionDenied("Only staff may publish presets.")
    preset = _own_preset(user, preset_id)
    preset.public = public
    preset.save(update_fields=["public", "updated_at"])
    return preset


def presets_publish(*, user: Any, preset_ids: list[Any], public: bool) -> int:
    """Publish anyone's presets for every user, or take them back (staff only); return how
    many changed."""
    if not user.is_staff:
        raise PermissionDenied("Only staff may publish presets.")
    changed = Preset.objects.filter(pk__in=preset_ids).exclude(public=public)
    return changed.update(public=public, updated_at=timezone.now())


def preset_delete(*, user: Any, preset_id: Any) -> None:
    _own_preset(user, preset_id).delete()


def _own_preset(user: Any, preset_id: Any) -> Preset:
    preset = Preset.objects.filter(pk=preset_id, user=user).first() if is_uuid(preset_id) else None
    if preset is None:
        raise NotFound("There is no such preset.")
    return preset
