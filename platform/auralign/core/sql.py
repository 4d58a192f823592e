"""Hand-written SQL for the few hot paths (the annotator's "next item", "submit" and token
authentication), kept portable (PostgreSQL and SQLite) and turned back into real model instances.

The ORM builds and compiles every query anew, about 0.3-0.5 ms of CPU each; on the annotation
hot path that was most of the server's work (docs/annotation.md, "Load"). SQL written here
names its columns through `Columns`, so a renamed field fails loudly, and values come back
through the same converters the ORM applies (uuid, datetime and JSON columns differ by backend).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import Col


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
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def sql(self, alias: str | None = None) -> str:
        """The select (or RETURNING) list, each column qualified by `alias` when given."""
        q = connection.ops.quote_name
        prefix = f"{alias}." if alias else ""
        return ", ".join(f"{prefix}{q(f.column)}" for f in self.fields)

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

    def values(self, row: Sequence, start: int = 0) -> list:
        values = list(row[start : start + len(self.fields)])
        for n, col, found in self._converters_for(connection):
            value = values[n]
            for convert in found:
                value = convert(value, col, connection)
            values[n] = value
        return values

    def load(self, row: Sequence, start: int = 0) -> Model:
        return self.model.from_db(connection.alias, self.attnames, self.values(row, start))


def instance(model: type[Model], values: dict) -> Model:
    """A model instance for a row just written by hand-written SQL, from its Python values by
    attname (every concrete field; as if read back from the database)."""
    fields = model._meta.concrete_fields
    return model.from_db(connection.alias, [f.attname for f in fields], [values[f.attname] for f in fields])


def timestamp(value):
    """A datetime as a query parameter (SQLite stores text)."""
    return connection.ops.adapt_datetimefield_value(value)


def param(model: type[Model], field: str, value):
    """A query parameter as the ORM would send it for `model.field` (uuid, datetime, JSON)."""
    return model._meta.get_field(field).get_db_prep_value(value, connection, prepared=False)


def lock_clause(*, of: str | None = None, skip_locked: bool = False) -> str:
    """` FOR NO KEY UPDATE [OF alias] [SKIP LOCKED]` where the database has row locks (PostgreSQL);
    '' on SQLite, whose IMMEDIATE transactions let one writer in at a time anyway."""
    if not connection.features.has_select_for_update:
        return ""
    clause = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else " FOR UPDATE"
    if of:
        clause += f" OF {of}"
    if skip_locked:
        clause += " SKIP LOCKED"
    return clause


def fetchone(sql: str, params: Sequence | dict = ()) -> tuple | None:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def fetchall(sql: str, params: Sequence | dict = ()) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute(sql: str, params: Sequence | dict = ()) -> int:
    """Run a statement; returns its row count."""
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount
