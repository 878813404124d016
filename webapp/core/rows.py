"""Model rows read and written with SQL written once, for the paths where Django
compiling a query costs more than PostgreSQL running it (a chat send: see
docs/performance.md).

The SQL names the model's concrete fields (all of them, or those asked for),
so a field added by a migration is read and written here too; values go
through the fields' own conversions, the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


def columns(model: type[Model], alias: str, names: tuple[str, ...] | None = None) -> str:
    """Return a select list of the model's fields (``names``: attnames; default every
    concrete field), each qualified by ``alias``, in the model's order."""
    return ", ".join(f'"{alias}"."{f.column}"' for f in _fields(model, names))


def width(model: type[Model], names: tuple[str, ...] | None = None) -> int:
    """How many values ``columns`` selects."""
    return len(_fields(model, names))


def loaded(model: type[M], values: Sequence[Any], names: tuple[str, ...] | None = None) -> M:
    """Build an instance from a row read with ``columns`` (converted as the ORM would);
    fields not read are deferred."""
    converted = [
        _convert(value, converters)
        for value, converters in zip(
            values, _converters(model, names, connection.vendor), strict=True
        )
    ]
    if names is None:
        return model.from_db(connection.alias, None, converted)
    return model.from_db(connection.alias, names, converted)


def insert(
    instances: Sequence[Model], computed: tuple[tuple[str, str], ...] = ()
) -> tuple[str, list[Any]]:
    """Return the INSERT of ``instances`` (all of one model) and its parameters.

    The fields' ``pre_save`` runs first, as in ``save()``: ``auto_now_add`` and
    ``auto_now`` stamp the instances. ``computed`` pairs attnames with the SQL
    expression that gives their value instead (no parameters of their own).
    """
    model = type(instances[0])
    fields = _fields(model, None)
    skipped = {name for name, _ in computed}
    params: list[Any] = []
    for instance in instances:
        params += [
            f.get_db_prep_save(f.pre_save(instance, True), connection)
            for f in fields
            if f.attname not in skipped
        ]
    return _insert_sql(model, len(instances), computed), params


@cache
def _fields(model: type[Model], names: tuple[str, ...] | None) -> list[Field[Any, Any]]:
    fields: list[Field[Any, Any]] = list(model._meta.concrete_fields)
    if names is None:
        return fields
    unknown = set(names) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {sorted(unknown)}")
    return [f for f in fields if f.attname in names]  # in the model's order, as from_db reads


@cache
def _converters(
    model: type[Model], names: tuple[str, ...] | None, vendor: str
) -> list[list[Converter]]:
    found = []
    for field in _fields(model, names):
        col = field.get_col(model._meta.db_table)
        found.append(connection.ops.get_db_converters(col) + col.get_db_converters(connection))
    return found


def _convert(value: Any, converters: list[Converter]) -> Any:
    for converter in converters:
        value = converter(value, None, connection)
    return value


@cache
def _insert_sql(model: type[Model], count: int, computed: tuple[tuple[str, str], ...]) -> str:
    fields = _fields(model, None)
    names = ", ".join(f'"{f.column}"' for f in fields)
    given = dict(computed)
    row = "(" + ", ".join(given.get(f.attname, "%s") for f in fields) + ")"
    # Names from the model's definition, never from input; values are parameters.
    table = model._meta.db_table
    return f'INSERT INTO "{table}" ({names}) VALUES ' + ", ".join([row] * count)  # noqa: S608
