# SiteSettings, ApiKey and IdempotencyRecord moved to the giftshop app (giftshop/0001_initial), keeping their tables:
# state only here, plus their content types, so their permissions and admin log entries follow them.

from django.db import migrations

MODELS = ['sitesettings', 'apikey', 'idempotencyrecord']


def _move_content_types(apps, schema_editor, *, source, target):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        # On a fresh database there is none yet (post_migrate creates content types after the migrations).
        if not types.filter(app_label=target, model=model).exists():
            types.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, source='accounts', target='giftshop')


def backwards(apps, schema_editor):
    _move_content_types(apps, schema_editor, source='giftshop', target='accounts')


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_subscription_renewal_retries'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('giftshop', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='IdempotencyRecord'),
                migrations.DeleteModel(name='ApiKey'),
                migrations.DeleteModel(name='SiteSettings'),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
