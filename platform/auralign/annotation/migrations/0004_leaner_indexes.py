"""Leaner indexes and item storage for the annotation hot path (docs/annotation.md, "Load").

Drops the single-column foreign-key indexes that another index already leads with (each one was
rewritten by every slot change, lease and judgment), and keeps lease expiry's index to live
leases only. Only the indexes change: the foreign keys stay as they are (AlterField alone would
drop and re-validate them, a scan of every table)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, column, index name Django gave the foreign key's index)
FK_INDEXES = [
    ("annotation_assignment", "campaign_id", "annotation_assignment_campaign_id_88239973"),
    ("annotation_assignment", "item_id", "annotation_assignment_item_id_21c60055"),
    ("annotation_item", "campaign_id", "annotation_item_campaign_id_83b9ec73"),
    ("annotation_judgment", "annotator_id", "annotation_judgment_annotator_id_b6d5694a"),
    ("annotation_judgment", "campaign_id", "annotation_judgment_campaign_id_63e631e5"),
]


# PostgreSQL only. Room on each item page, so the judgment counter's update stays a HOT update
# (no new index entries). And vacuum after a fixed number of dead item rows rather than 20% of
# the table: each lease leaves a dead entry at the head of `item_open_queue` that "next item"
# steps over (and visits in the table) until vacuum removes it, and under steady load the scans
# rarely get to mark them dead themselves. On 1M items that vacuum costs ~0.2 s of CPU.
ITEM_STORAGE = (
    "ALTER TABLE annotation_item SET (fillfactor = 90,"
    " autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)"
)
ITEM_STORAGE_UNDO = (
    "ALTER TABLE annotation_item RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)"
)


def item_storage(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ITEM_STORAGE)


def item_storage_undo(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ITEM_STORAGE_UNDO)


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_item_queue'),
        ('campaigns', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='assignment',
            name='annotation__status_e60f22_idx',
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('status', 'live')), fields=['expires_at'], name='assignment_live_expiry'),
        ),
        migrations.RunPython(item_storage, item_storage_undo),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"', f'CREATE INDEX "{name}" ON "{table}" ("{column}")')
                for table, column, name in FK_INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='assignment',
                    name='campaign',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='campaigns.campaign'),
                ),
                migrations.AlterField(
                    model_name='assignment',
                    name='item',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='annotation.item'),
                ),
                migrations.AlterField(
                    model_name='item',
                    name='campaign',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='items', to='campaigns.campaign'),
                ),
                migrations.AlterField(
                    model_name='judgment',
                    name='annotator',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='judgments', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='judgment',
                    name='campaign',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='judgments', to='campaigns.campaign'),
                ),
            ],
        ),
    ]
