"""Recording in the append-only audit log."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ..models import AuditEntry, AuditOutcome, Gate

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class Caller:
    """Where an action came from: the address and browser of the request, if there was one."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def of(cls, request: Any) -> Caller:
        meta = request.META
        return cls(
            ip=_address(meta.get("REMOTE_ADDR")),
            user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:MAX_USER_AGENT],
        )

    @classmethod
    def of_scope(cls, scope: Any) -> Caller:
        """The caller of an ASGI connection (a websocket): its address and browser."""
        client = scope.get("client") or (None,)
        agent = dict(scope.get("headers") or ()).get(b"user-agent", b"")
        return cls(ip=_address(client[0]), user_agent=agent.decode("latin-1")[:MAX_USER_AGENT])


def _address(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None  # a Unix socket, a test client's placeholder


NOBODY = Caller()


def audit_record(
    *,
    action: str,
    gate: Gate | None = None,
    actor: Any = None,
    subject: Any = None,
    target: Any = "",
    outcome: str = AuditOutcome.OK,
    detail: dict[str, Any] | None = None,
    caller: Caller = NOBODY,
) -> AuditEntry:
    """Append one entry; ``actor`` did it (None: the system), ``subject`` is whose access it is."""
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        action=action,
        gate=gate,
        gate_slug=gate.slug if gate else "",
        actor=actor,
        actor_email=actor.email if actor else "",
        subject=subject,
        subject_email=subject.email if subject else "",
        target=str(target or ""),
        outcome=outcome,
        detail=detail or {},
        ip=caller.ip,
        user_agent=caller.user_agent,
    )


def audit_own(
    *, action: str, user: Any, gate: Gate, target: Any, caller: Caller, **detail: Any
) -> AuditEntry:
    """Record what a person did about their own access (they are actor and subject)."""
    return audit_record(
        action=action,
        gate=gate,
        actor=user,
        subject=user,
        target=target,
        detail=detail,
        caller=caller,
    )


def audit_refused_use(*, user: Any, refused: Any, caller: Caller = NOBODY) -> AuditEntry:
    """Record an attempt the access rule refused: a chat send, a compare column, an arena
    side or an API call on a model (``refused`` is the rule's ``AccessRefused``)."""
    model = refused.model
    return audit_record(
        action=f"{refused.action}.refused",
        gate=model.gate,
        actor=user,
        subject=user,
        target=model.slug,
        outcome=AuditOutcome.REFUSED,
        detail={"model": model.slug, "reason": refused.detail},
        caller=caller,
    )
