"""A gate: the models it covers, the levels it offers, its form, its licences, its rules."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models

from webapp.core.models import BaseModel

# A host name as an email address ends with it: labels of letters, digits and hyphens.
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class Level(models.TextChoices):
    CHAT = "chat", "Chat: use the model in the browser"
    API = "api", "API: personal tokens"
    WEIGHTS = "weights", "Weights: download the files"


class Renewal(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic: renewing extends the grant at once"
    REVIEW = "review", "Review: a renewal goes back to the reviewers"


def validate_domains(value: str) -> None:
    bad = [d for d in domain_lines(value) if not _DOMAIN.match(d)]
    if bad:
        raise ValidationError(f"Not a domain name: {', '.join(bad)}.")


def domain_lines(value: str) -> list[str]:
    return [line.strip().lower().lstrip("@") for line in value.splitlines() if line.strip()]


class Gate(BaseModel):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True, help_text="One line for lists.")
    description = models.TextField(
        blank=True, help_text="What access requires and who may apply, in Markdown."
    )
    is_open = models.BooleanField(default=True, help_text="Whether new requests are accepted.")
    approve_domains = models.TextField(
        blank=True,
        validators=[validate_domains],
        help_text="Approve at once when the requester's verified email is at one of these "
        "domains (one per line, e.g. example.edu); otherwise a reviewer decides.",
    )
    cooldown_days = models.PositiveIntegerField(
        default=30, help_text="Days after a rejection before the same person may apply again."
    )
    grant_days = models.PositiveIntegerField(
        null=True, blank=True, default=365, help_text="Default length of a grant; blank: no end."
    )
    renewal = models.CharField(max_length=16, choices=Renewal.choices, default=Renewal.AUTOMATIC)
    reviewer_group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who reviews requests besides staff (and who is notified of them).",
    )
    transparency_public = models.BooleanField(
        default=False, help_text="Publish a page of aggregate figures (never names)."
    )
    position = models.IntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("access:gate", kwargs={"slug": self.slug})

    def domains(self) -> list[str]:
        return domain_lines(self.approve_domains)


class GateLevel(BaseModel):
    """A level the gate offers, whether a request may ask for it, and whether it is automatic."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="levels")
    level = models.CharField(max_length=16, choices=Level.choices)
    description = models.CharField(
        max_length=500, blank=True, help_text="What this level allows, shown on the gate's page."
    )
    requestable = models.BooleanField(default=True, help_text="A request may ask for it.")
    auto_approve = models.BooleanField(
        default=False, help_text="Given at once on request, without a reviewer."
    )

    class Meta:
        ordering = ["gate", "level"]
        constraints = [
            models.UniqueConstraint(fields=["gate", "level"], name="access_gatelevel_unique")
        ]

    def __str__(self) -> str:
        return self.level


class FieldKind(models.TextChoices):
    TEXT = "text", "Text"
    LONG_TEXT = "long_text", "Long text"
    SELECT = "select", "Select one"
    COUNTRY = "country", "Country"
    DATE = "date", "Date"
    CHECKBOX = "checkbox", "Checkbox"
    URL = "url", "URL"


class GateField(BaseModel):
    """One question of the gate's request form."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="fields")
    name = models.SlugField(max_length=50, help_text="Key of the answer in exports.")
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=FieldKind.choices, default=FieldKind.TEXT)
    required = models.BooleanField(default=True)
    help_text = models.CharField(max_length=500, blank=True)
    choices = models.TextField(blank=True, help_text="For a select: one choice per line.")
    position = models.IntegerField(default=0)

    class Meta:
        ordering = ["gate", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["gate", "name"], name="access_gatefield_unique")
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        if self.kind == FieldKind.SELECT and not self.choice_list():
            raise ValidationError({"choices": "A select needs at least one choice."})
        if self.kind != FieldKind.SELECT and self.choices.strip():
            raise ValidationError({"choices": "Only a select has choices."})

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]


class LicenceVersion(BaseModel):
    """One version of a gate's licence; never changed once published (people accepted it)."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="licences")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    text = models.TextField(help_text="The licence or acceptable-use text, in Markdown.")

    class Meta:
        ordering = ["gate", "-version"]
        get_latest_by = "version"
        constraints = [
            models.UniqueConstraint(fields=["gate", "version"], name="access_licence_unique")
        ]

    def __str__(self) -> str:
        return f"{self.title} (version {self.version})"
