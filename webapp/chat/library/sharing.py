"""Shares: snapshot the path to a conversation's leaf, show it, revoke it, continue it."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.catalog.policy import model_can_use
from webapp.chat.models import Conversation, Message, Role, Share
from webapp.chat.selectors import message_path
from webapp.core.errors import NotFound, PermissionDenied, ValidationFailed
from webapp.core.ids import is_uuid

from .services import _owned

_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def share_create(*, user: Any, conversation_id: Any, leaf_id: Any = None) -> Share:
    """Copy the path to ``leaf_id`` (default: the branch the owner last viewed) into a new
    share."""
    with transaction.atomic():
        conversation = _owned(user=user, conversation_id=conversation_id)
        if leaf_id not in (None, "") and not is_uuid(leaf_id):
            raise NotFound("There is no such message in this conversation.")
        leaf = uuid.UUID(str(leaf_id)) if leaf_id else None
        path = message_path(conversation=conversation, leaf_id=leaf or conversation.current_leaf_id)
        if leaf is not None and (not path or path[-1].pk != leaf):
            raise NotFound("There is no such message in this conversation.")
        snapshot = [_snapshot(m) for m in path if m.text and m.role != Role.SYSTEM]
        if not snapshot:
            raise ValidationFailed("There is nothing to share yet.")
        last_params = next((m["params"] for m in reversed(snapshot) if m.get("params")), {})
        return Share.objects.create(
            owner=user,
            conversation=conversation,
            model=conversation.model,
            title=conversation.title,
            params=last_params,
            messages=snapshot,
        )


def _snapshot(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.text}
    generation = message.generation
    if generation is not None:
        data["model"] = generation.language_model.display_name
        data["params"] = generation.params
    return data


def share_get(*, token: Any) -> Share:
    """Return the live share with that public id, or raise NotFound (revoked looks the same)."""
    if not isinstance(token, str) or not 8 <= len(token) <= 32 or set(token) - _TOKEN_CHARS:
        raise NotFound("There is no such shared conversation.")
    share = (
        Share.objects.select_related("model", "owner")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if share is None:
        raise NotFound("There is no such shared conversation.")
    return share


def share_list(*, user: Any) -> list[Share]:
    """Return the user's live shares, newest first."""
    if not user.is_authenticated:
        return []
    return list(Share.objects.filter(owner=user, revoked_at__isnull=True).defer("messages"))


def share_revoke(*, user: Any, token: Any) -> Share:
    """Turn the owner's link off for good; anyone else gets NotFound."""
    share = share_get(token=token)
    if not user.is_authenticated or share.owner_id != user.pk:
        raise NotFound("There is no such shared conversation.")
    Share.objects.filter(pk=share.pk).update(revoked_at=timezone.now())
    return share


def share_continue(*, user: Any, token: Any) -> Conversation:
    """Copy the shared snapshot into a new conversation of ``user``, if they may use its model."""
    share = share_get(token=token)
    if not user.is_authenticated:
        raise PermissionDenied("Sign in to continue this conversation.")
    if not model_can_use(user=user, model=share.model, action="chat"):
        raise PermissionDenied(
            f"You do not have access to {share.model.display_name}, "
            "the model this conversation was held with."
        )
    with transaction.atomic():
        conversation = Conversation.objects.create(user=user, model=share.model, title=share.title)
        parent = None
        rows = []
        for item in share.messages:
            parent = Message(
                id=uuid.uuid4(),
                conversation=conversation,
                parent=parent,
                role=item["role"],
                content=item["content"],
            )
            rows.append(parent)
        Message.objects.bulk_create(rows)
    return conversation
