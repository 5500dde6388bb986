# The Email model moved to the emails app (emails/0001_initial), keeping its table: state only here, plus its
# content type, so its permissions and admin log entries follow it.

from django.db import migrations


def _move_content_type(apps, schema_editor, *, source, target):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    types = ContentType.objects.using(schema_editor.connection.alias)
    # On a fresh database there is none yet (post_migrate creates content types after the migrations).
    if not types.filter(app_label=target, model='email').exists():
        types.filter(app_label=source, model='email').update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, source='gifts', target='emails')


def backwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, source='emails', target='gifts')


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('emails', '0001_initial'),
        ('gifts', '0005_timeline_repeatable_unclaimed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Email')],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
