"""Language models, the endpoints that serve them, and who may use them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from webapp.core.models import BaseModel

# The only schemes a URL shown as a link may have: no javascript:, data:, file: or ftp:.
LINK_SCHEMES = ("http", "https")


def link_href(url: str) -> str:
    """Return ``url`` as a browser would read it if it is an http(s) URL with a host, else ""."""
    try:
        parts = urlsplit(url)  # lowercases the scheme, drops tabs, newlines, leading blanks
    except ValueError:
        return ""
    return urlunsplit(parts) if parts.scheme in LINK_SCHEMES and parts.netloc else ""


class AccessPolicy(models.TextChoices):
    PUBLIC = "public", "Public: anyone"
    REGISTERED = "registered", "Registered: any signed-in user"
    GATED = "gated", "Gated: an approved access request is needed"
    PRIVATE = "private", "Private: named groups only"


class BackendKind(models.TextChoices):
    TGI = "tgi", "text-generation-inference"
    OPENAI = "openai", "OpenAI-compatible (vLLM, llama.cpp, SGLang…)"


class LanguageModel(BaseModel):
    slug = models.SlugField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="The model card, in Markdown.")
    licence_name = models.CharField(max_length=200, blank=True)
    licence_url = models.URLField(blank=True, validators=[URLValidator(schemes=LINK_SCHEMES)])
    backend = models.CharField(max_length=16, choices=BackendKind.choices)
    backend_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Model name sent to an OpenAI-compatible server; blank lets the server choose.",
    )
    default_params = models.JSONField(default=dict, blank=True)
    context_length = models.PositiveIntegerField(default=4096)
    access_policy = models.CharField(
        max_length=16, choices=AccessPolicy.choices, default=AccessPolicy.REGISTERED
    )
    allowed_groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="+", help_text="Private models: who may use them."
    )
    gate = models.ForeignKey(
        "access.Gate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="models",
        help_text="Gated models: the gate whose grants open them.",
    )
    is_active = models.BooleanField(default=True)
    position = models.IntegerField(default=0, help_text="Lower comes first in lists.")

    class Meta:
        ordering = ["position", "display_name"]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("catalog:model_detail", kwargs={"slug": self.slug})

    def clean(self) -> None:
        if self.gate_id is not None and self.access_policy != AccessPolicy.GATED:
            raise ValidationError({"gate": "Only a gated model has a gate."})

    def licence_link(self) -> str:
        """Return the licence URL if it may be a link, else "" (whatever the database holds)."""
        return link_href(self.licence_url)


def validate_endpoint_url(value: str) -> None:
    """Accept http(s) URLs with any host name, including single-label ones such as ``tgi``."""
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        valid = False
    if not valid:
        raise ValidationError("Enter an http:// or https:// URL with a host name.")
    if parts.username is not None or parts.password is not None:
        # URLs are shown in the admin and on every reply's details: never a secret.
        raise ValidationError(
            "Leave credentials out of the URL: put the key in the endpoint's API key field."
        )


class ModelEndpoint(BaseModel):
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="endpoints")
    url = models.CharField(max_length=500, validators=[validate_endpoint_url])
    api_key = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    max_concurrent = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Replies it serves at once. Blank: as the server reports "
        "(TGI's max_concurrent_requests), else GENERATION_ENDPOINT_CAPACITY.",
    )
    # Health as the background probe last saw it: the fair queue sends nothing to an
    # endpoint that failed it, until a later probe passes.
    healthy = models.BooleanField(default=True)
    reported_capacity = models.PositiveIntegerField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    health_detail = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model", "url"], name="catalog_endpoint_unique_url"),
        ]

    def __str__(self) -> str:
        return self.url
