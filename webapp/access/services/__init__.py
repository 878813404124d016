"""Write access to gates: requests, decisions, grants, licences, notifications, the audit log.

Every service that changes someone's access records it in the audit log and
calls ``webapp.accounts.revocation.access_changed`` for them, so their open
sockets close and reconnect under the new rule.
"""
