# The order's delivery instant is named as the gift's (Gift.scheduled_at), which it becomes when the order is paid.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_order_checkout_key'),
    ]

    operations = [
        migrations.RenameField(
            model_name='order',
            old_name='delivery_date',
            new_name='scheduled_at',
        ),
    ]
