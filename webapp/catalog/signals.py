"""A private model's groups changed: its members' open sockets decide again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from webapp.accounts.revocation import access_changed

from .models import LanguageModel


@receiver(m2m_changed, sender=LanguageModel.allowed_groups.through)
def _allowed_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any
) -> None:
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:  # group.<languagemodel set>: the group's own members
        groups = [instance.pk]
    elif action == "pre_clear":
        groups = list(instance.allowed_groups.values_list("pk", flat=True))
    else:
        groups = list(pk_set or ())
    members = get_user_model().objects.filter(groups__in=groups).values_list("pk", flat=True)
    for user_id in set(members):
        access_changed(user_id)
