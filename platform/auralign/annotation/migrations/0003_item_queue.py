"""The assignment engine's queues: a random tiebreak per item and two partial indexes."""

from django.db import migrations, models

import auralign.annotation.models

# Rows that existed before the field got one default value; give each its own random tiebreak.
SHUFFLE = {
    "postgresql": "UPDATE annotation_item SET tiebreak = random()",
    "sqlite": "UPDATE annotation_item SET tiebreak = (abs(random()) % 1000000007) / 1000000007.0",
}


def shuffle_existing(apps, schema_editor):
    sql = SHUFFLE.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0002_judgment_immutable'),
        ('campaigns', '0001_initial'),
        ('dialogues', '0001_initial'),
        ('generation', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='item',
            name='tiebreak',
            field=models.FloatField(default=auralign.annotation.models.random_tiebreak, help_text='random order among otherwise equal items'),
        ),
        migrations.RunPython(shuffle_existing, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(condition=models.Q(('completed_at__isnull', True), ('is_gold', False), ('slots_used__lt', models.F('overlap'))), fields=['campaign', '-slots_used', '-priority', 'tiebreak'], name='item_open_queue'),
        ),
        migrations.AddIndex(
            model_name='item',
            index=models.Index(condition=models.Q(('is_gold', True)), fields=['campaign', 'tiebreak'], name='item_gold_queue'),
        ),
    ]
