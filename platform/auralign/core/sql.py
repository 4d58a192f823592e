"""Hand-written SQL for the few hot paths (the annotator's "next item", "submit" and token
authentication), kept portable (PostgreSQL and SQLite) and turned back into real model instances.

The ORM builds and compiles every query anew, about 0.3-0.5 ms of CPU each; on the annotation
hot path that was most of the server's work (docs/annotation.md, "Load"). SQL written here
names its columns through `Columns`, so a renamed field fails loudly, and values come back
through the same converters the ORM applies (uuid, datetime and JSON columns differ by backend).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.db.models.expressions import Col


def db():
    """The default database connection itself (`django.db.connection` is a proxy that looks the
    thread's connection up again on every attribute read, measurable on the hot path)."""
    return connections[DEFAULT_DB_ALIAS]


class Columns:
    """Some (default: all concrete) fields of a model, read by hand-written SQL.

    `sql(alias)` is the select list; `load(row, start)` builds the instance from the row's
    values at `start`..., with the fields not read deferred (reading one queries it lazily)."""

    def __init__(self, model: type[Model], fields: Iterable[str] | None = None):
        self.model = model
        opts = model._meta
        wanted = None if fields is None else {opts.get_field(f).attname for f in fields}
        # In the model's field order, as Model.from_db expects them.
        self.fields = [f for f in opts.concrete_fields if wanted is None or f.attname in wanted]
        self.attnames = [f.attname for f in self.fields]
        self._sql: dict[str | None, str] = {}
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def sql(self, alias: str | None = None) -> str:
        """The select (or RETURNING) list, each column qualified by `alias` when given. Names
        are quoted the ANSI way, which both PostgreSQL and SQLite use."""
        text = self._sql.get(alias)
        if text is None:
            prefix = f"{alias}." if alias else ""
            text = self._sql[alias] = ", ".join(f'{prefix}"{f.column}"' for f in self.fields)
        return text

    def _converters_for(self, conn) -> list:
        converters = self._converters.get(conn.vendor)
        if converters is None:
            converters = []
            for n, field in enumerate(self.fields):
                col = Col(self.model._meta.db_table, field)
                found = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
                if found:
                    converters.append((n, col, found))
            self._converters[conn.vendor] = converters
        return converters

    def values(self, row: Sequence, start: int = 0, conn=None) -> list:
        conn = conn or db()
        values = list(row[start : start + len(self.fields)])
        for n, col, found in self._converters_for(conn):
            value = values[n]
            for convert in found:
                value = convert(value, col, conn)
            values[n] = value
        return values

    def record(self, row: Sequence, start: int = 0) -> dict:
        """The values as {attname: value}, without building a model instance (cheaper, for
        rows only read and passed on)."""
        return dict(zip(self.attnames, self.values(row, start), strict=True))

    def load(self, row: Sequence, start: int = 0) -> Model:
        conn = db()
        return self.model.from_db(conn.alias, self.attnames, self.values(row, start, conn))


def instance(model: type[Model], values: dict) -> Model:
    """A model instance for a row just written by hand-written SQL, from its Python values by
    attname (every concrete field; as if read back from the database)."""
    fields = model._meta.concrete_fields
    return model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in fields], [values[f.attname] for f in fields])


def timestamp(value):
    """A datetime as a query parameter (SQLite stores text)."""
    return db().ops.adapt_datetimefield_value(value)


def param(model: type[Model], field: str, value):
    """A query parameter as the ORM would send it for `model.field` (uuid, datetime, JSON)."""
    return model._meta.get_field(field).get_db_prep_value(value, db(), prepared=False)


@functools.cache
def _lock_clause(vendor: str, of: str | None, skip_locked: bool) -> str:
    features = db().features
    if not features.has_select_for_update:
        return ""
    clause = " FOR NO KEY UPDATE" if features.has_select_for_no_key_update else " FOR UPDATE"
    if of:
        clause += f" OF {of}"
    if skip_locked:
        clause += " SKIP LOCKED"
    return clause


def lock_clause(*, of: str | None = None, skip_locked: bool = False) -> str:
    """` FOR NO KEY UPDATE [OF alias] [SKIP LOCKED]` where the database has row locks (PostgreSQL);
    '' on SQLite, whose IMMEDIATE transactions let one writer in at a time anyway."""
    return _lock_clause(db().vendor, of, skip_locked)


def _run(sql: str, params: Sequence | dict):
    """Execute `sql` on the default connection; returns the (DB-API) cursor.

    On PostgreSQL the statement is a server-side prepared statement of this connection (parsed
    and planned once, then only executed): parsing and planning were about half of the
    database's CPU on the annotation hot path. Django's own cursors bind on the client and never
    prepare (poolers such as PgBouncer in transaction mode lose prepared statements; set
    DB_PREPARED_STATEMENTS=0 behind one). With query logging on (DEBUG) statements go through
    Django's cursor, so they are logged."""
    conn = db()
    if conn.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS or conn.queries_logged:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return cursor
    import psycopg  # noqa: PLC0415 (PostgreSQL only)

    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    conn.validate_no_broken_transaction()
    with conn.wrap_database_errors:
        cursor = psycopg.Cursor(conn.connection)  # server-side binding ($1, $2, ...)
        cursor.execute(sql, params, prepare=True)
    return cursor


def fetchone(sql: str, params: Sequence | dict = ()) -> tuple | None:
    cursor = _run(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def fetchall(sql: str, params: Sequence | dict = ()) -> list[tuple]:
    cursor = _run(sql, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def execute(sql: str, params: Sequence | dict = ()) -> int:
    """Run a statement; returns its row count."""
    cursor = _run(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()
