"""Single-statement upserts (`INSERT … ON CONFLICT … DO UPDATE … RETURNING`) that work on
PostgreSQL and SQLite (3.35+).

Django's ORM has `bulk_create(update_conflicts=True)`, but it can only copy the new values
(`SET f = EXCLUDED.f`): it cannot add to a counter, update only when something differs, or
return the row it wrote on SQLite. The intake path needs all three in one statement, so the SQL
is written here, once, from the model's own field definitions (column names, defaults, database
preparation and converters), and the callers only add their `DO UPDATE SET` clause.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.db import NotSupportedError, connection, models
from django.db.models import Model
from django.db.models.fields import Field
from django.utils import timezone

M = TypeVar("M", bound=Model)


def stale_prepared_statement(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL refusing a prepared statement whose result columns a schema
    change (a migration) altered since the connection prepared it (SQLSTATE 0A000, "cached plan
    must not change result type"). See `prepare_again_after_migration`."""
    cause = exc.__cause__ or exc
    return getattr(
        getattr(cause, "diag", None), "sqlstate", None
    ) == "0A000" and "cached plan must not change result type" in str(cause)


def prepare_again_after_migration(
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    """Django execute wrapper, on every PostgreSQL connection (`autorespond.apps`): a statement
    that fails as a stale prepared statement (`stale_prepared_statement`) outside a transaction
    is run once more after `DEALLOCATE ALL`, which psycopg follows by forgetting its own
    prepared statements.

    Why: a statement prepared before a migration changed the columns it returns fails without
    effect; inside a transaction the rollback makes psycopg forget its prepared statements, so
    it fails once per connection, but psycopg keeps one that failed on its own (autocommit), and
    every later use on that connection would fail as well, until the connection is renewed.
    Inside a transaction the error is raised (the transaction is aborted; its caller decides)."""
    try:
        return execute(sql, params, many, context)
    except NotSupportedError as exc:
        if not (stale_prepared_statement(exc) and context["connection"].get_autocommit()):
            raise
        context["cursor"].cursor.execute("DEALLOCATE ALL")
        return execute(sql, params, many, context)


def install_prepared_statement_recovery(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: add `prepare_again_after_migration` to a PostgreSQL
    connection's execute wrappers (once; the list outlives reconnections)."""
    if (
        connection.vendor == "postgresql"
        and prepare_again_after_migration not in connection.execute_wrappers
    ):
        connection.execute_wrappers.insert(0, prepare_again_after_migration)


def vendor() -> str:
    """The default database's vendor ("postgresql", "sqlite"): statements built once are cached
    per vendor, since quoting may differ."""
    return connection.vendor


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def column(model: type[Model], field_name: str) -> str:
    """The quoted column of `field_name`, qualified by its table (for `DO UPDATE SET`, where a
    bare name would be ambiguous with EXCLUDED)."""
    return f"{quote(model._meta.db_table)}.{quote(model._meta.get_field(field_name).column)}"


def insert_fields(model: type[Model]) -> list[Field]:
    """The concrete fields an INSERT writes: all but an auto primary key."""
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and getattr(f, "db_returning", False))
    ]


def insert_columns(model: type[Model]) -> list[str]:
    return [quote(f.column) for f in insert_fields(model)]


def insert_params(model: type[Model], values: dict[str, Any]) -> list[Any]:
    """The parameters of an INSERT of `insert_fields(model)` for a new row: `values` by field
    attname (`source_id`, not `source`), the other fields their defaults, `auto_now` and
    `auto_now_add` fields the current time, each prepared for this database as Django's own
    INSERT would (`Field.pre_save` and `Field.get_db_prep_save`).

    Written out rather than built from an unsaved instance (`Model(**values)`, then each field's
    preparation), which was a tenth of an intake POST's CPU: a text value that is already a str
    and an integer that is already an int are what Django's preparation would return, so they
    skip it, as does an aware datetime on PostgreSQL; anything else (JSON, other types, datetimes
    on SQLite) goes through it.
    """
    now = None
    # On PostgreSQL an aware datetime is its own database value (DateTimeField's preparation
    # returns it, and the backend's `adapt_datetimefield_value` passes it through); SQLite's
    # backend turns it into text, so there it is prepared.
    aware_datetimes_plain = connection.vendor == "postgresql" and settings.USE_TZ
    params = []
    for attname, field, auto_now, plain_type in _insert_plan(model):
        if auto_now:
            value = now = now or timezone.now()
        elif attname in values:
            value = values[attname]
        else:
            value = field.get_default()
        if (
            value is None
            or (plain_type is not None and type(value) is plain_type)
            or (
                aware_datetimes_plain
                and type(value) is datetime.datetime
                and value.tzinfo is not None
                and isinstance(field, models.DateTimeField)
            )
        ):
            params.append(value)
        else:
            params.append(field.get_db_prep_save(value, connection))
    return params


# The field classes whose database value is the Python value itself when it has this type (their
# `get_db_prep_save` returns a str or int unchanged).
_PLAIN_TYPES: tuple[tuple[type[Field], type], ...] = (
    (models.CharField, str),
    (models.TextField, str),
    (models.IntegerField, int),  # and its subclasses: BigIntegerField, PositiveIntegerField, …
)


@functools.cache
def _insert_plan(model: type[Model]) -> list[tuple[str, Field, bool, type | None]]:
    """Per model: (attname, field, whether it is set to now on insert, the value type that needs
    no preparation or None) for each of `insert_fields(model)`."""
    plan = []
    for f in insert_fields(model):
        target = f.target_field if f.is_relation else f
        plain = next((t for cls, t in _PLAIN_TYPES if isinstance(target, cls)), None)
        auto_now = getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        plan.append((f.attname, f, auto_now, plain))
    return plan


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement and return its first row (None when it returned none)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_returned(model: type[M], sql: str, params: Sequence[Any]) -> M | None:
    """Run `sql` (a SELECT of, or an INSERT/UPDATE … RETURNING, `returning_columns(model)`) and
    build the model instance from the (first) row it returned, with the same converters a query
    applies (SQLite returns datetimes as text, for example); None when it returned no row."""
    row = fetch_one(sql, params)
    if row is None:
        return None
    return from_returned(model, row)


def from_returned(model: type[M], row: Sequence[Any]) -> M:
    """The model instance of a row of `returning_columns(model)` (extra columns after them are
    ignored), with the converters a query would apply."""
    attnames, converters = _returned_converters(model, vendor())
    values = list(row[: len(attnames)])
    for index, expression, functions in converters:
        for function in functions:
            values[index] = function(values[index], expression, connection)
    return model.from_db(connection.alias, attnames, values)


@functools.cache
def _returned_converters(
    model: type[Model], vendor: str
) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    """Per model and vendor: the attnames of the returned columns, and for each column that has
    any, its converters (as a query's compiler would apply them). Built once: the converters
    depend on the backend and the field only (they get the current connection as argument)."""
    fields = list(model._meta.concrete_fields)
    converters = []
    for index, f in enumerate(fields):
        expression = f.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression) + f.get_db_converters(connection)
        if functions:
            converters.append((index, expression, functions))
    return [f.attname for f in fields], converters


def returning_columns(model: type[Model]) -> str:
    """The quoted columns `fetch_returned` expects, in the model's field order."""
    return ", ".join(quote(f.column) for f in model._meta.concrete_fields)


def bulk_update_values(
    model: type[Model], rows: Sequence[Model], columns: Mapping[str, str]
) -> None:
    """Write `columns` (field name -> PostgreSQL type, for the VALUES list's casts) of `rows`
    in one statement.

    Django's `bulk_update` builds a CASE expression per column and row, which for a drain of 200
    rows costs seconds of Python; on PostgreSQL one `UPDATE … FROM (VALUES …)` does the same.
    Other databases (SQLite under `make run`) use bulk_update. The fields' columns are their
    names (no db_column), json fields are dumped here.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, list(columns))
        return
    names = list(columns)
    placeholders = "(" + ", ".join(["%s"] * (len(names) + 1)) + ")"
    values: list[Any] = []
    for row in rows:
        values.append(row.pk)
        for name in names:
            value = getattr(row, name)
            values.append(json.dumps(value) if columns[name] == "jsonb" else value)
    assignments = ", ".join(f"{quote(c)} = v.{quote(c)}::{columns[c]}" for c in names)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608  (our names)
        f"FROM (VALUES {', '.join([placeholders] * len(rows))})"
        f" AS v(id, {', '.join(quote(c) for c in names)}) WHERE t.id = v.id::bigint"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
