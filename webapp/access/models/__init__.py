"""Gates, their levels, forms and licences; requests, grants and the audit log."""

from __future__ import annotations

from .audit import AuditEntry, AuditOutcome
from .gates import (
    FieldKind,
    Gate,
    GateField,
    GateLevel,
    Level,
    LicenceVersion,
    Renewal,
)
from .grants import (
    AccessRequest,
    Grant,
    Notify,
    RequestKind,
    RequestStatus,
    ReviewerSettings,
)

__all__ = [
    "AccessRequest",
    "AuditEntry",
    "AuditOutcome",
    "FieldKind",
    "Gate",
    "GateField",
    "GateLevel",
    "Grant",
    "Level",
    "LicenceVersion",
    "Notify",
    "Renewal",
    "RequestKind",
    "RequestStatus",
    "ReviewerSettings",
]
