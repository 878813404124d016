"""The connection pool's check: a healthy connection is lent without a round trip, and a
connection whose server end is gone is never lent."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from webapp.core.postgresql.base import connection_check


def _url() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in {"dbname", "user", "password", "host", "port"}}
    )


@pytest.fixture
def pool() -> Any:
    made = ConnectionPool(
        _url(),
        min_size=1,
        max_size=1,
        open=True,
        check=connection_check,
        kwargs={"autocommit": True},
    )
    made.wait()
    yield made
    made.close()


def _backend(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


@pytest.mark.django_db
def test_a_healthy_connection_is_lent_without_a_round_trip(pool):
    first = _backend(pool)
    with mock.patch.object(
        ConnectionPool, "check_connection", side_effect=AssertionError("a round trip")
    ) as full:
        assert _backend(pool) == first  # the same connection, lent again
    assert full.call_count == 0


@pytest.mark.django_db
def test_a_connection_whose_backend_was_killed_is_not_lent(pool):
    first = _backend(pool)
    with psycopg.connect(_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [first])
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        deadline = time.monotonic() + 5
        while admin.execute(gone, [first]).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(0.05)  # the backend has exited: its goodbye is in the socket
    # Without a check the pool would lend the dead connection and this query would fail.
    second = _backend(pool)
    assert second != first


@pytest.mark.django_db
def test_the_sites_database_pool_uses_the_check():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.pool is not None
    assert connection.pool._check is connection_check
