"""The custom User: signed in by email, no username."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


class EmailUserManager(UserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = None
    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)

    objects = EmailUserManager()

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    # What open sockets depend on, as last loaded or saved (see accounts/signals.py).
    loaded_access: tuple[Any, ...] | None = None

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> User:
        instance = super().from_db(db, field_names, values)
        if {"password", "is_active", "is_staff", "is_superuser"} <= set(field_names):
            instance.loaded_access = instance.access_snapshot()
        return instance

    def access_snapshot(self) -> tuple[Any, ...]:
        return (self.is_active, self.is_staff, self.is_superuser, self.password)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


from .tokens.models import PersonalToken, Scope  # noqa: E402  (registered with this app)

__all__ = ["EmailUserManager", "PersonalToken", "Scope", "User"]
