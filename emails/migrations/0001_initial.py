# The Email model moved here from the gifts app with its table (gifts_email): state only, the database is unchanged.
# gifts/0006_email_moved_to_emails removes it from the gifts app's state.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0002_order_checkout_key'),
        ('gifts', '0005_timeline_repeatable_unclaimed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Email',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=120, unique=True)),
                        ('kind', models.CharField(choices=[('gift_receipt', 'Gift receipt (gifter)'), ('order_receipt', 'Order receipt'), ('gift_delivery', 'Gift delivery (recipient)'), ('gift_delivered', 'Gift delivered (gifter)'), ('gift_redeemed', 'Gift redeemed (gifter)'), ('set_password', 'Set your password (an account without one)'), ('claim_expiring', 'Gift about to expire unredeemed (recipient)'), ('term_ending', 'Gift term ending (recipient)'), ('gift_expired', 'Gift expired unredeemed (gifter)'), ('gift_bounced', 'Gift delivery bounced (gifter)')], max_length=30)),
                        ('to_email', models.EmailField(max_length=254)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed'), ('bounced', 'Bounced')], default='pending', max_length=10)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('sending_started_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('provider_message_id', models.CharField(blank=True, max_length=200)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('gift', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='emails', to='gifts.gift')),
                        ('order', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='emails', to='billing.order')),
                    ],
                    options={
                        'db_table': 'gifts_email',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='email_due_idx'), models.Index(condition=models.Q(('status', 'sending')), fields=['sending_started_at'], name='email_sending_idx'), models.Index(condition=models.Q(('provider_message_id', ''), _negated=True), fields=['provider_message_id'], name='email_provider_id_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'sending', 'sent', 'failed', 'bounced'])), name='email_status_valid'), models.CheckConstraint(condition=models.Q(models.Q(('status', 'sent'), _negated=True), ('sent_at__isnull', False), _connector='OR'), name='email_sent_has_time')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
