"""Write the sidebar: rename, pin, delete (soft, undoable for a few seconds), restore, purge."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.chat.models import Conversation
from webapp.core.errors import Conflict, NotFound, ValidationFailed
from webapp.core.ids import is_uuid

TITLE_MAX = 200


def _owned(*, user: Any, conversation_id: Any, deleted: bool = False) -> Conversation:
    if not user.is_authenticated or not is_uuid(conversation_id):
        raise NotFound("There is no such conversation.")
    found = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation_id, user=user, deleted_at__isnull=not deleted)
        .first()
    )
    if found is None:
        raise NotFound("There is no such conversation.")
    return found


def conversation_rename(*, user: Any, conversation_id: Any, title: Any) -> Conversation:
    """Give the user's conversation a new title (one line, at most 200 characters)."""
    if not isinstance(title, str) or not " ".join(title.split()):
        raise ValidationFailed("Type a title.")
    title = " ".join(title.split())
    if len(title) > TITLE_MAX or "\x00" in title:
        raise ValidationFailed(f"A title has at most {TITLE_MAX} characters.")
    with transaction.atomic():
        conversation = _owned(user=user, conversation_id=conversation_id)
        Conversation.objects.filter(pk=conversation.pk).update(title=title)
        conversation.title = title
    return conversation


def conversation_pin(*, user: Any, conversation_id: Any, pinned: bool) -> Conversation:
    """Pin the conversation to the top of the sidebar, or unpin it."""
    with transaction.atomic():
        conversation = _owned(user=user, conversation_id=conversation_id)
        # update(), not save(): pinning is not activity and must not move it in time.
        Conversation.objects.filter(pk=conversation.pk).update(pinned=bool(pinned))
        conversation.pinned = bool(pinned)
    return conversation


def conversation_delete(*, user: Any, conversation_id: Any) -> Conversation:
    """Hide the conversation at once; it is purged when the undo window is over."""
    with transaction.atomic():
        conversation = _owned(user=user, conversation_id=conversation_id)
        conversation.deleted_at = timezone.now()
        Conversation.objects.filter(pk=conversation.pk).update(deleted_at=conversation.deleted_at)
    return conversation


def conversation_restore(*, user: Any, conversation_id: Any) -> Conversation:
    """Undo a delete, while the undo window lasts."""
    with transaction.atomic():
        conversation = _owned(user=user, conversation_id=conversation_id, deleted=True)
        if conversation.deleted_at < timezone.now() - _window():  # type: ignore[operator]
            raise Conflict("It is too late to undo: the conversation is gone.", code="expired")
        Conversation.objects.filter(pk=conversation.pk).update(deleted_at=None)
        conversation.deleted_at = None
    return conversation


def conversations_purge(*, now: dt.datetime | None = None) -> int:
    """Delete for good the conversations deleted before the undo window; return how many."""
    cutoff = (now or timezone.now()) - _window()
    gone = Conversation.objects.filter(deleted_at__lt=cutoff)
    count = 0
    for pk in list(gone.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            Conversation.objects.filter(pk=pk).delete()
            count += 1
    return count


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.CHAT_UNDO_SECONDS)
