"""What an API call does with the database, each in one call from the async views.

A call authenticates its token (which notes the token's last use), finds the
model, asks the one access rule, and creates its generation through
``generation_create`` with origin ``api``: the same limits and fair queue as
the web chat. Nothing here talks to the channel layer (see ``follow``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from webapp.access.services.audit import Caller as AuditCaller
from webapp.access.services.audit import audit_refused_use
from webapp.accounts.tokens.models import PersonalToken
from webapp.accounts.tokens.services import token_authenticate
from webapp.catalog.models import AccessPolicy, LanguageModel
from webapp.catalog.policy import AccessRefused, access_refusal
from webapp.catalog.selectors import model_get, model_list_usable
from webapp.core.errors import ApplicationError
from webapp.generations import services as generations
from webapp.generations.models import Generation, Origin

from .errors import ApiError, api_error_from, model_not_found
from .parse import Call, body_parse, chat_parse, completion_parse, sampling_parse

# A model's slug (SlugField): nothing else is looked up.
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")


@dataclass(frozen=True)
class Caller:
    """Who calls: the bearer secret and where from, plus the site's address for links."""

    secret: str
    ip: str | None
    site: str  # e.g. "https://gatehouse.example.org", without the trailing slash


@dataclass(frozen=True)
class Started:
    generation_id: str
    group: str
    user: Any
    model: str  # the slug the client named


def caller_token(*, caller: Caller, scope: str) -> PersonalToken:
    """Return the caller's usable token with its user, or raise ApiError (401, 403)."""
    try:
        return token_authenticate(secret=caller.secret, scope=scope, ip=caller.ip)
    except ApplicationError as exc:
        raise api_error_from(exc) from exc


def api_models(*, caller: Caller) -> list[LanguageModel]:
    """Return the models the caller's user may use through the API."""
    token = caller_token(caller=caller, scope="models")
    return model_list_usable(user=token.user, action="api")


def api_model(*, caller: Caller, slug: str) -> LanguageModel:
    token = caller_token(caller=caller, scope="models")
    return _usable(user=token.user, slug=slug, site=caller.site)


def _usable(*, user: Any, slug: str, site: str) -> LanguageModel:
    """Return the model ``slug`` if ``user`` may use it through the API, else raise ApiError."""
    model = model_get(slug=slug) if SLUG.fullmatch(slug) else None
    if model is None:
        raise model_not_found(slug)
    refusal = access_refusal(user=user, model_or_gate=model, action="api")
    if refusal is not None:
        error = ApiError(
            403,
            _with_gate(refusal, model, site),
            type="permission_error",
            param="model",
            code="model_access_denied",
        )
        error.refused = AccessRefused(refusal, model=model, action="api")
        raise error
    return model


def _with_gate(refusal: str, model: LanguageModel, site: str) -> str:
    """Add where to apply to the refusal of a gated model: the client may be a script."""
    if model.access_policy != AccessPolicy.GATED or model.gate is None:
        return refusal
    url = f"{site}{model.gate.get_absolute_url()}"
    return (
        f"{refusal} The API needs the gate's 'api' level: apply for it, or ask to add it "
        f"to your access, at {url}"
    )


def api_call_start(*, caller: Caller, body: bytes, scope: str) -> tuple[Call, Started]:
    """Authenticate, check the body, access and the parameters, in that order (a bad
    token is a 401 whatever the body), and create the call's generation.

    The token's last use and the generation commit together (one commit per call); a
    refused call still keeps its token's last use.
    """
    with transaction.atomic():
        token = caller_token(caller=caller, scope=scope)
        try:
            with transaction.atomic():
                return _start(caller=caller, body=body, scope=scope, user=token.user)
        except ApiError as exc:
            refused = exc
            if refused.refused is not None:  # an attempt the rule refused: kept in the log
                audit_refused_use(
                    user=token.user, refused=refused.refused, caller=AuditCaller(ip=caller.ip)
                )
    raise refused


def _start(*, caller: Caller, body: bytes, scope: str, user: Any) -> tuple[Call, Started]:
    data = body_parse(body)
    call = chat_parse(data) if scope == "chat" else completion_parse(data)
    model = _usable(user=user, slug=call.model, site=caller.site)
    params = sampling_parse(
        call.raw,
        backend=model.backend,
        context_length=model.context_length,
        completion=bool(call.prompt),
    )
    try:
        generation = _create(user=user, model=model, call=call, params=params)
    except ApplicationError as exc:
        raise api_error_from(exc) from exc
    return call, Started(str(generation.pk), generation.channel_group, user, model.slug)


def _create(*, user: Any, model: LanguageModel, call: Call, params: dict[str, Any]) -> Generation:
    if call.prompt:
        return generations.generation_create(
            user=user, model=model, origin=Origin.API, prompt=call.prompt, params=params
        )
    return generations.generation_create(
        user=user, model=model, origin=Origin.API, messages=call.messages, params=params
    )


def api_call_stop(*, started: Started) -> bool:
    """Stop a call's generation (its client left); return whether it had not started, so
    that nobody else will announce its end."""
    try:
        stopped = generations.generation_stop(
            user=started.user, generation_id=started.generation_id
        )
    except ApplicationError:
        return False
    return stopped.before_start


def api_call_outcome(*, generation_id: str) -> Generation | None:
    """Return the call's generation as saved (when its log went quiet), or None."""
    return Generation.objects.filter(pk=generation_id).select_related("language_model").first()
