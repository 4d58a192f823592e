"""A done snapshot is immutable: the database itself refuses UPDATE once it succeeded or failed."""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION auralign_export_snapshot_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'export snapshots are immutable once done'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER export_snapshot_immutable BEFORE UPDATE ON rlhf_export_exportsnapshot
FOR EACH ROW WHEN (OLD.status IN ('succeeded', 'failed')) EXECUTE FUNCTION auralign_export_snapshot_immutable();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS export_snapshot_immutable ON rlhf_export_exportsnapshot;
DROP FUNCTION IF EXISTS auralign_export_snapshot_immutable();
"""
SQLITE_UP = """
CREATE TRIGGER export_snapshot_immutable BEFORE UPDATE ON rlhf_export_exportsnapshot
FOR EACH ROW WHEN OLD.status IN ('succeeded', 'failed')
BEGIN SELECT RAISE(ABORT, 'export snapshots are immutable once done'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS export_snapshot_immutable;"


def _run(sql_by_vendor):
    def run(apps, schema_editor):
        sql = sql_by_vendor.get(schema_editor.connection.vendor)
        if sql:
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("rlhf_export", "0001_initial")]
    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}),
        )
    ]
