"""The kinds of user the access matrix runs over, and what each is told for each policy.

One gated model ("Gated Model", gate "Research Gate") and, per policy, the
model under test; each kind is built relative to that gate and to the group
that opens the private model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser, Group
from django.utils import timezone

from tests.factories import (
    AccessRequestFactory,
    GrantFactory,
    LanguageModelFactory,
    LicenceVersionFactory,
    UserFactory,
    gate_factory,
)

POLICIES = ["public", "registered", "gated", "private"]
KINDS = [
    "anonymous",
    "registered",
    "pending",
    "granted chat only",
    "granted weights",
    "expired",
    "revoked",
    "licence outdated",
    "group member",
    "staff",
]
GATE = "Research Gate"
REVOKE_REASON = "The weights were shared outside the lab."


@dataclass
class World:
    gate: object
    group: Group
    models: dict  # policy -> model


def world_build() -> World:
    gate = gate_factory(slug="research-gate", name=GATE)
    group = Group.objects.create(name="partners")
    models = {}
    for policy in POLICIES:
        name = f"{policy.title()} Model"
        model = LanguageModelFactory(
            slug=f"{policy}-model",
            display_name=name,
            access_policy=policy,
            gate=gate if policy == "gated" else None,
        )
        if policy == "private":
            model.allowed_groups.add(group)
        models[policy] = model
    return World(gate=gate, group=group, models=models)


def user_build(kind: str, world: World):
    """Return a user of ``kind`` (AnonymousUser for "anonymous")."""
    if kind == "anonymous":
        return AnonymousUser()
    user = UserFactory(is_staff=kind == "staff")
    gate, now = world.gate, timezone.now()
    if kind == "pending":
        AccessRequestFactory(gate=gate, user=user, levels=["chat", "weights"])
    elif kind == "granted chat only":
        GrantFactory(gate=gate, user=user, levels=["chat"])
    elif kind == "granted weights":
        GrantFactory(gate=gate, user=user, levels=["weights"])
    elif kind == "expired":
        GrantFactory(gate=gate, user=user, expires_at=now - timedelta(hours=1))
    elif kind == "revoked":
        GrantFactory(gate=gate, user=user, revoked_at=now, revoke_reason=REVOKE_REASON)
    elif kind == "licence outdated":
        GrantFactory(gate=gate, user=user)
        if not gate.licences.filter(version=2).exists():
            LicenceVersionFactory(gate=gate, version=2, text="New terms.")
    elif kind == "group member":
        user.groups.add(world.group)
    return user


def expected_refusal(policy: str, kind: str, action: str = "chat") -> str | None:
    """The sentence the user is told, or None where they are let in."""
    name = f"{policy.title()} Model"
    if kind == "staff":
        return None
    if kind == "anonymous":
        return None if policy == "public" and action == "view" else f"Sign in to use {name}."
    if policy in ("public", "registered"):
        return None
    if policy == "private":
        return None if kind == "group member" else f"{name} is open to named groups only."
    return {
        "registered": f"{GATE} is gated: request access on its page.",
        "group member": f"{GATE} is gated: request access on its page.",
        "pending": f"Your request for access to {GATE} is waiting for review.",
        "granted chat only": None,
        "granted weights": (
            f"Your access to {GATE} does not include chat; ask for it on the gate's page."
        ),
        "expired": f"Your access to {GATE} expired on ",  # then the date
        "revoked": f"Your access to {GATE} was revoked: {REVOKE_REASON}",
        "licence outdated": (
            f"The licence of {GATE} has changed: accept the new version on the gate's page "
            "to go on."
        ),
    }[kind]


def refusal_matches(actual: str | None, expected: str | None) -> bool:
    if expected is None or actual is None:
        return actual == expected
    return actual.startswith(expected) if expected.endswith("on ") else actual == expected
