# Event, WebhookEndpoint and WebhookDelivery moved to the giftshop app (giftshop/0001_initial), keeping their tables:
# state only here, plus their content types, so their permissions and admin log entries follow them.

from django.db import migrations

MODELS = ['event', 'webhookendpoint', 'webhookdelivery']


def _move_content_types(apps, schema_editor, *, source, target):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        # On a fresh database there is none yet (post_migrate creates content types after the migrations).
        if not types.filter(app_label=target, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, source='gifts', target='giftshop')


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, source='giftshop', target='gifts')


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('gifts', '0006_email_moved_to_emails'),
        ('giftshop', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='WebhookDelivery'),
                migrations.DeleteModel(name='Event'),
                migrations.DeleteModel(name='WebhookEndpoint'),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
