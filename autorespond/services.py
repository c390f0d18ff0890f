"""Writes of the core domain: sources, inquiries and API keys.

Views, the API and commands call these; nothing here knows about HTTP.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from autorespond import hooks
from autorespond.db import (
    column,
    fetch_one,
    fetch_returned,
    from_returned,
    insert_columns,
    insert_fields,
    insert_params,
    quote,
    returning_columns,
    vendor,
)
from autorespond.hooks import InquiryChangedWrite, inquiry_changed
from autorespond.models import ApiKey, Inquiry, Source

INQUIRY_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "postal_code",
    "job_description",
    "country",
)


def source_upsert(*, slug: str, name: str, parent_slug: str | None = None) -> tuple[Source, bool]:
    """Create or update a source; returns (source, created).

    Raises ValidationError (with a dict of field errors) for an unknown parent or a parent that
    would make a cycle: a source can never be its own ancestor.
    """
    with transaction.atomic():
        parent = None
        if parent_slug:
            parent = Source.objects.select_for_update().filter(slug=parent_slug).first()
            if parent is None:
                raise ValidationError({"parent": f"Unknown source '{parent_slug}'."})
        source = Source.objects.select_for_update().filter(slug=slug).first()
        created = source is None
        if source is None:
            source = Source(slug=slug)
        if (
            parent is not None
            and not created
            and (parent.pk == source.pk or source in parent.ancestors())
        ):
            raise ValidationError(
                {
                    "parent": f"'{parent_slug}' is {slug} or below it: a source cannot be its own "
                    "ancestor."
                }
            )
        source.name = name
        source.parent = parent
        source.full_clean()
        source.save()
    return source, created


@dataclass(frozen=True)
class InquiryUpsertResult:
    inquiry: Inquiry
    created: bool
    changed: bool


def inquiry_upsert(
    *, source: Source | str, external_id: str, data: dict[str, Any]
) -> InquiryUpsertResult:
    """Create the inquiry, or update the fields present in `data` and keep the others.

    `source` is a Source or its slug. `data` holds already validated values of
    `INQUIRY_FIELDS` (None clears a field). One `INSERT … ON CONFLICT (source, external_id) DO
    UPDATE … RETURNING` statement does the work, so simultaneous first calls for one pair give
    one inquiry: the database's unique constraint decides which call created it, and the others
    update (or find unchanged) the row it made. The row is always returned; its `write_token`
    says whether this call inserted it, changed it or left it as it was.

    Every create and every real change is told to the integrations, atomically with it; a call
    that changes nothing tells nobody. On PostgreSQL the integrations' writes
    (`hooks.inquiry_changed_writes`) are part of the same statement, so a POST costs one round
    trip and no explicit transaction; elsewhere (SQLite), or when an integration registered a
    plain handler, they run inside one transaction with the upsert (`hooks.inquiry_changed`).

    Raises Source.DoesNotExist when `source` is a slug that no source has.
    """
    unknown = set(data) - set(INQUIRY_FIELDS)
    if unknown:
        raise ValueError(f"Unknown inquiry fields: {sorted(unknown)}")
    token = secrets.token_hex(16)
    if vendor() == "postgresql" and not hooks.inquiry_changed_handlers:
        return _inquiry_upsert_joined(source, external_id, data, token)
    with transaction.atomic():
        inquiry = fetch_returned(Inquiry, *_inquiry_upsert_sql(source, external_id, data, token))
        if inquiry is None:
            raise Source.DoesNotExist(f"No source with the slug {source!r}.")
        created = inquiry.write_token == "c" + token
        changed = created or inquiry.write_token == "u" + token
        if isinstance(source, Source):
            inquiry.source = source
        if changed:
            inquiry_changed(inquiry)
    return InquiryUpsertResult(inquiry=inquiry, created=created, changed=changed)


def _inquiry_upsert_joined(
    source: Source | str, external_id: str, data: dict[str, Any], token: str
) -> InquiryUpsertResult:
    """`inquiry_upsert` in one PostgreSQL statement with the integrations' writes."""
    writes = tuple(hooks.inquiry_changed_writes)
    sql, params = _inquiry_upsert_sql(source, external_id, data, token)
    params.append(token)
    for write in writes:
        params.extend(write.params())
    row = fetch_one(_joined_statement(sql, writes), params)
    if row is None:
        raise Source.DoesNotExist(f"No source with the slug {source!r}.")
    inquiry = from_returned(Inquiry, row)
    created = inquiry.write_token == "c" + token
    changed = created or inquiry.write_token == "u" + token
    if isinstance(source, Source):
        inquiry.source = source
    offset = len(Inquiry._meta.concrete_fields)
    for write in writes:
        part = row[offset : offset + write.columns]
        offset += write.columns
        # A LEFT JOIN that found no row gives NULL in every column.
        write.apply(inquiry, None if all(v is None for v in part) else part, changed)
    return InquiryUpsertResult(inquiry=inquiry, created=created, changed=changed)


@functools.lru_cache(maxsize=4096)
def _joined_statement(upsert: str, writes: tuple[InquiryChangedWrite, ...]) -> str:
    """The upsert as the CTE `written_inquiry`, the row again as `changed_inquiry` when the
    token shows that this statement wrote it (one parameter: the token), the integrations'
    CTEs, and one row: the inquiry's columns, then each write's `result` columns. A
    data-modifying CTE runs exactly once whatever the outer SELECT reads (PostgreSQL's "WITH
    Queries"), and the whole statement is one transaction in autocommit."""
    # Only our statements and quoted identifiers are formatted in; every value is a parameter.
    ctes = [
        f"written_inquiry AS ({upsert})",
        "changed_inquiry AS (SELECT * FROM written_inquiry"  # noqa: S608
        f" WHERE substr({quote('write_token')}, 2) = %s)",
        *(write.ctes() for write in writes),
    ]
    selected = ["written_inquiry.*", *(f"{write.result}.*" for write in writes)]
    joins = "".join(f" LEFT JOIN {write.result} ON true" for write in writes)
    return f"WITH {', '.join(ctes)} SELECT {', '.join(selected)} FROM written_inquiry{joins}"  # noqa: S608


def _inquiry_upsert_sql(
    source: Source | str, external_id: str, data: dict[str, Any], token: str
) -> tuple[str, list[Any]]:
    """The upsert statement of `inquiry_upsert` and its parameters."""
    by_slug = not isinstance(source, Source)
    params = insert_params(
        Inquiry,
        {
            "source_id": 0 if by_slug else source.pk,
            "external_id": external_id,
            "write_token": "c" + token,
            **{field: "" if value is None else value for field, value in data.items()},
        },
    )
    if by_slug:
        del params[_SOURCE_INDEX]
        params.append(source)
    sql = _inquiry_upsert_statement(vendor(), tuple(sorted(data)), by_slug)
    return sql, [*params, "u" + token]


_SOURCE_INDEX = [f.name for f in insert_fields(Inquiry)].index("source")


@functools.lru_cache(maxsize=4096)  # at most 2 ** len(INQUIRY_FIELDS) * 2 statements per vendor
def _inquiry_upsert_statement(vendor: str, present: tuple[str, ...], by_slug: bool) -> str:
    """The SQL of the upsert for the fields `present` in the request (built once per shape).

    Insert: every field (absent ones empty), write_token "c<token>". On conflict: the fields
    present are set; `updated_at` and write_token "u<token>" only when one of them differs from
    the stored value. The SET expressions read the row as it was, after any concurrent writer
    committed (both databases lock the conflicting row first), so the comparison is exact.
    With a slug the source's id comes from a SELECT in the same statement: no row back means
    no such source. Field names are the columns of these fields (none has a db_column).
    """
    columns = insert_columns(Inquiry)
    placeholders = ["%s"] * len(columns)
    source_from = ""
    if by_slug:
        placeholders[_SOURCE_INDEX] = "s." + quote(Source._meta.pk.column)
        source_from = (
            f" FROM {quote(Source._meta.db_table)} s"
            f" WHERE s.{quote(Source._meta.get_field('slug').column)} = %s"
        )
    # One row-value comparison (PostgreSQL; SQLite 3.15+) rather than one per field joined by
    # OR: the same test, in half the text, which keeps the joined statement of PostgreSQL under
    # the length up to which psycopg caches a statement's parsing (4096 characters).
    differs = (
        f"({', '.join(column(Inquiry, name) for name in present)})"
        f" <> ({', '.join(f'EXCLUDED.{quote(name)}' for name in present)})"
        if present
        else "1 = 0"
    )
    assignments = [f"{quote(name)} = EXCLUDED.{quote(name)}" for name in present]
    assignments += [
        f"{quote('updated_at')} = CASE WHEN {differs} THEN EXCLUDED.{quote('updated_at')}"
        f" ELSE {column(Inquiry, 'updated_at')} END",
        f"{quote('write_token')} = CASE WHEN {differs} THEN %s"
        f" ELSE {column(Inquiry, 'write_token')} END",
    ]
    # SQLite needs the WHERE of an INSERT … SELECT before ON CONFLICT to parse the upsert; the
    # VALUES form has none.
    return (
        # Only quoted identifiers of the model are formatted in; every value is a parameter.
        f"INSERT INTO {quote(Inquiry._meta.db_table)} ({', '.join(columns)})"  # noqa: S608
        + (
            f" SELECT {', '.join(placeholders)}{source_from}"
            if by_slug
            else f" VALUES ({', '.join(placeholders)})"
        )
        + f" ON CONFLICT ({quote('source_id')}, {quote('external_id')}) DO UPDATE SET "
        + ", ".join(assignments)
        + f" RETURNING {returning_columns(Inquiry)}"
    )


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is shown once and never stored."""
    raw_key = "ar_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=raw_key[:10], key_hash=_hash_key(raw_key))
    return key, raw_key


# `ApiKey.last_used_at` is written at most this often per key: it says "in use lately", and a
# write on every request would cost a statement and a commit each time.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)


# Active keys found lately, by hash: (until when, on the monotonic clock; the key). Every API
# request checks its key, and a cached one saves the request a database round trip (a tenth of an
# intake POST's CPU). Only keys found active are kept, so the cache holds at most the service's
# keys, and a wrong key is looked up every time. Revoking through `api_key_revoke` forgets the key
# in this process at once; other server processes refuse it once their entry is older than
# `API_KEY_CACHE_SECONDS` (README, "Ingestion API"). 0 turns the cache off.
_active_keys: dict[str, tuple[float, ApiKey]] = {}


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None (looked up by its hash; a key found active in
    the last `API_KEY_CACHE_SECONDS` is taken from this process's memory).

    Marks the key used (`last_used_at`) when its mark is older than a minute: one conditional
    UPDATE, so simultaneous requests of several server processes still write it once."""
    key_hash = _hash_key(raw_key)
    cached = _active_keys.get(key_hash)
    if cached is not None and cached[0] > time.monotonic():
        key = cached[1]
    else:
        key = fetch_returned(ApiKey, _api_key_lookup_statement(vendor()), [key_hash])
        if key is None:
            _active_keys.pop(key_hash, None)
            return None
        if settings.API_KEY_CACHE_SECONDS > 0:
            _active_keys[key_hash] = (time.monotonic() + settings.API_KEY_CACHE_SECONDS, key)
    now = timezone.now()
    stale = now - API_KEY_LAST_USED_RESOLUTION
    if key.last_used_at is None or key.last_used_at <= stale:
        ApiKey.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=key.pk
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


@functools.cache
def _api_key_lookup_statement(vendor: str) -> str:
    """The SELECT of an active key by its hash, built once per vendor: every API request runs
    it, and the ORM would build and compile the same query each time (a quarter of a POST's
    CPU in the profile of benchmarks/ingest_api.py)."""
    table = quote(ApiKey._meta.db_table)
    return (
        # Only quoted identifiers of the model are formatted in; the hash is a parameter.
        f"SELECT {returning_columns(ApiKey)} FROM {table}"  # noqa: S608
        f" WHERE {column(ApiKey, 'key_hash')} = %s AND {column(ApiKey, 'revoked_at')} IS NULL"
    )


def api_key_revoke(*, key: ApiKey) -> None:
    """Revoke `key`: this process refuses it at once, other server processes within
    `API_KEY_CACHE_SECONDS`."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    _active_keys.pop(key.key_hash, None)
