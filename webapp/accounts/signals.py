"""What ends a user's open sockets: logout, deactivation, a new password, other rights."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from . import revocation
from .models import User


@receiver(user_logged_out)
def _signed_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is not None and request.session.session_key:
        revocation.session_ended(user.pk, request.session.session_key)


@receiver(post_save, sender=User)
def _saved(sender: Any, instance: User, created: bool, **_: Any) -> None:
    now = instance.access_snapshot()
    if not created and instance.loaded_access is not None and now != instance.loaded_access:
        revocation.access_changed(instance.pk)
    instance.loaded_access = now


@receiver(m2m_changed, sender=User.groups.through)
def _groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **_: Any
) -> None:
    if not reverse:  # user.groups.add(...), .remove(...), .clear()
        if action in ("post_add", "post_remove", "post_clear"):
            revocation.access_changed(instance.pk)
    elif action in ("post_add", "post_remove"):  # group.user_set.add(...)
        for user_id in pk_set or ():
            revocation.access_changed(user_id)
    elif action == "pre_clear":  # group.user_set.clear(): its members, before they go
        for user_id in instance.user_set.values_list("pk", flat=True):
            revocation.access_changed(user_id)
