"""The one access rule: may this user use this model for this action, and if not, why.

Every entry point (pages, websocket, API, arena pairing, weight downloads,
the worker's claim) asks ``model_can_use`` or ``access_refusal``; lists ask
``model_list_usable``, which applies the same decision (``_decide``) to
facts read for every model at once. Gated models answer by the user's live
grant on the model's gate (``webapp.access``): the chat level opens view,
chat and arena, the api level the API, the weights level downloads; an
expired or revoked grant, or a licence version not accepted again, opens
nothing. Private models answer by ``allowed_groups``. The user may be a
minimal ``User(pk=…, is_active=…, is_staff=…)``: facts are read by id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from webapp.access.models import Gate
from webapp.access.selectors.rule import (
    ACTION_LEVELS,
    Holding,
    gate_refusal,
    grant_refusal_reason,
    holding_allows,
    holdings,
)
from webapp.core.errors import PermissionDenied

from .models import AccessPolicy, LanguageModel

Action = Literal["view", "chat", "arena", "api", "download"]
Refusal = Literal["unavailable", "sign_in", "deactivated", "private", "no_gate", "gate"]


@dataclass
class Facts:
    """What the rule reads beyond the user and model rows."""

    holdings: dict[Any, Holding] = field(default_factory=dict)  # by gate id
    member_of: set[Any] = field(default_factory=set)  # private models the user's groups open


class AccessRefused(PermissionDenied):
    """The rule refused ``action`` on ``model``: the entry point that catches it records the
    attempt in the audit log (``webapp.access.services.audit.audit_refused_use``), outside
    the transaction the refusal rolled back."""

    def __init__(self, detail: str, *, model: LanguageModel, action: Action) -> None:
        super().__init__(detail)
        self.model, self.action = model, action


def model_can_use(*, user: Any, model: LanguageModel, action: Action = "chat") -> bool:
    facts = facts_read(user=user, models=[model], action=action)
    return _decide(user, model, action, facts) is None


def access_refusal(
    *, user: Any, model_or_gate: LanguageModel | Gate, action: Action = "chat"
) -> str | None:
    """Return why ``user`` may not do ``action`` (a sentence a person can read), or None."""
    if isinstance(model_or_gate, Gate):
        return gate_refusal(user=user, gate=model_or_gate, level=ACTION_LEVELS[action])
    model = model_or_gate
    facts = facts_read(user=user, models=[model], action=action)
    refusal = _decide(user, model, action, facts)
    return None if refusal is None else _explain(refusal, user, model, action, facts)


def facts_read(*, user: Any, models: Iterable[LanguageModel], action: Action) -> Facts:
    """Read the grants and group memberships the rule needs for ``models``: two queries at most."""
    facts = Facts()
    if not user.is_authenticated or not user.is_active or user.is_staff:
        return facts
    models = list(models)
    gates = {m.gate_id for m in models if m.access_policy == AccessPolicy.GATED and m.gate_id}
    if gates:
        facts.holdings = holdings(user_id=user.pk, gate_ids=gates, level=ACTION_LEVELS[action])
    private = [m.pk for m in models if m.access_policy == AccessPolicy.PRIVATE]
    if private:
        through = LanguageModel.allowed_groups.through
        facts.member_of = set(
            through.objects.filter(languagemodel_id__in=private, group__user=user.pk).values_list(
                "languagemodel_id", flat=True
            )
        )
    return facts


def models_usable(
    *, user: Any, models: Iterable[LanguageModel], action: Action
) -> list[LanguageModel]:
    """Keep the models ``user`` may use for ``action``, with one read of the facts for all."""
    models = list(models)
    facts = facts_read(user=user, models=models, action=action)
    return [m for m in models if _decide(user, m, action, facts) is None]


def _decide(user: Any, model: LanguageModel, action: Action, facts: Facts) -> Refusal | None:
    if not model.is_active:
        return "unavailable"
    if user.is_authenticated and user.is_active and user.is_staff:
        return None
    if model.access_policy == AccessPolicy.PUBLIC and action == "view":
        return None
    if not user.is_authenticated:
        return "sign_in"
    if not user.is_active:
        return "deactivated"
    if model.access_policy in (AccessPolicy.PUBLIC, AccessPolicy.REGISTERED):
        return None
    if model.access_policy == AccessPolicy.PRIVATE:
        return None if model.pk in facts.member_of else "private"
    if model.gate_id is None:
        return "no_gate"
    level = ACTION_LEVELS[action]
    return None if holding_allows(facts.holdings.get(model.gate_id), level) else "gate"


def _explain(
    refusal: Refusal, user: Any, model: LanguageModel, action: Action, facts: Facts
) -> str:
    if refusal == "gate":
        gate = Gate.objects.get(pk=model.gate_id)  # type: ignore[misc]  # set: refusal is "gate"
        return grant_refusal_reason(
            user_id=user.pk,
            gate=gate,
            level=ACTION_LEVELS[action],
            holding=facts.holdings.get(model.gate_id),
        )
    name = model.display_name or "This model"
    return {
        "unavailable": "This model is not available.",
        "sign_in": f"Sign in to use {name}.",
        "deactivated": "Your account is deactivated.",
        "private": f"{name} is open to named groups only.",
        "no_gate": f"{name} is gated, and its gate is not set up yet.",
    }[refusal]
