"""Django's PostgreSQL backend, with a cheaper check of a pooled connection before it is lent.

psycopg_pool's own check (what Django sets with ``CONN_HEALTH_CHECKS``) sends an empty
query: a round trip to PostgreSQL every time a request, a socket's database work or a
worker's claim takes a connection, before its first real statement. A server that went
away (a restart, a crash, a killed backend) closes its end of the socket, and usually
says why first, so the socket turns readable; an idle connection in good health has
nothing to read. ``connection_check`` looks at the socket without waiting and runs the
full check only when there is something to read (docs/decisions.md).
"""

from __future__ import annotations

import select
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def connection_check(conn: Any) -> None:
    """Return quietly if ``conn`` may be lent; raise if it is broken (the pool then
    discards it and takes or opens another)."""
    if conn.closed or conn.broken:
        raise ConnectionError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:  # a notice, or the server's goodbye: a real round trip tells which
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect = self.get_connection_params()
            connect["autocommit"] = True  # as Django's own pool: it sets autocommit later
            made = ConnectionPool(
                kwargs=connect,
                open=False,
                configure=self._configure_connection,
                check=connection_check,
                **({} if options is True else options),
            )
            # As Django's: the first thread to make a pool wins; the pool opens on first use.
            self._connection_pools.setdefault(self.alias, made)
        return self._connection_pools[self.alias]
