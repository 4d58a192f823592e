"""Judgments are immutable: the database itself refuses UPDATE on a stored judgment."""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION auralign_judgment_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'judgments are immutable'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER judgment_immutable BEFORE UPDATE ON annotation_judgment
FOR EACH ROW EXECUTE FUNCTION auralign_judgment_immutable();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS judgment_immutable ON annotation_judgment;
DROP FUNCTION IF EXISTS auralign_judgment_immutable();
"""
SQLITE_UP = """
CREATE TRIGGER judgment_immutable BEFORE UPDATE ON annotation_judgment
BEGIN SELECT RAISE(ABORT, 'judgments are immutable'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS judgment_immutable;"


def _run(sql_by_vendor):
    def run(apps, schema_editor):
        sql = sql_by_vendor.get(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]
    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
