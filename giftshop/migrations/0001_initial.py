# SiteSettings, ApiKey and IdempotencyRecord (from accounts) and Event, WebhookEndpoint and WebhookDelivery (from gifts)
# moved to the giftshop app with their tables: state only, the database is unchanged.
# accounts/0006_site_settings_and_api_plumbing_moved and gifts/0007_events_and_webhooks_moved remove them from their
# old apps' state.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import giftshop.timezones


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0005_subscription_renewal_retries'),
        ('gifts', '0006_email_moved_to_emails'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('kind', models.CharField(choices=[('full', 'Full access'), ('read_only', 'Read-only')], default='full', max_length=10)),
                        ('prefix', models.CharField(editable=False, help_text="The key's first characters, to recognise it.", max_length=16)),
                        ('key_digest', models.CharField(editable=False, max_length=64, unique=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'accounts_apikey',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500)),
                        ('username', models.CharField(blank=True, help_text='HTTP Basic user sent with each call.', max_length=100)),
                        ('password', models.CharField(blank=True, max_length=200)),
                        ('secret', models.CharField(help_text='Signs each body: header X-Giftshop-Signature = hex HMAC-SHA-256(secret, body).', max_length=100)),
                        ('event_types', models.JSONField(blank=True, default=list, help_text='Empty: every event.')),
                        ('active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'gifts_webhookendpoint',
                        'ordering': ['url'],
                    },
                ),
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_type', models.CharField(max_length=40)),
                        ('occurred_at', models.DateTimeField()),
                        ('content', models.JSONField(help_text="The resources as they were (e.g. {'gift': …}).")),
                        ('gift', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='gifts.gift')),
                    ],
                    options={
                        'db_table': 'gifts_event',
                        'ordering': ['-occurred_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=100)),
                        ('method', models.CharField(max_length=10)),
                        ('path', models.CharField(max_length=300)),
                        ('fingerprint', models.CharField(help_text='SHA-256 of the canonical request.', max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, help_text='Empty while in flight.', null=True)),
                        ('content_type', models.CharField(blank=True, max_length=100)),
                        ('body', models.BinaryField(default=b'')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='idempotency_records', to='giftshop.apikey')),
                    ],
                    options={
                        'db_table': 'accounts_idempotencyrecord',
                    },
                ),
                migrations.CreateModel(
                    name='SiteSettings',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('redeem_url', models.URLField(blank=True, default='', help_text="Where recipients redeem; the emailed link is <this URL>?giftCode=CODE. Empty: this site's own redeem page.")),
                        ('default_auto_claim', models.BooleanField(default=False, help_text='Gifts are claimed on delivery by default.')),
                        ('default_claim_expiry_days', models.PositiveIntegerField(blank=True, default=365, help_text='Days after delivery a gift can be claimed. Empty: never expires.', null=True)),
                        ('sender_email', models.CharField(blank=True, help_text='From address of gift emails, e.g. "Gifts <gifts@example.com>". Empty: DEFAULT_FROM_EMAIL.', max_length=254)),
                        ('time_zone', models.CharField(default='UTC', max_length=64, validators=[giftshop.timezones.validate_time_zone])),
                    ],
                    options={
                        'verbose_name': 'site settings',
                        'verbose_name_plural': 'site settings',
                        'db_table': 'accounts_sitesettings',
                        'constraints': [models.CheckConstraint(condition=models.Q(('pk', 1)), name='site_settings_single_row')],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('delivered', 'Delivered'), ('failed', 'Failed')], default='pending', max_length=10)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('sending_started_at', models.DateTimeField(blank=True, null=True)),
                        ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='giftshop.event')),
                        ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='giftshop.webhookendpoint')),
                    ],
                    options={
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'gifts_webhookdelivery',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.AddIndex(
                    model_name='event',
                    index=models.Index(fields=['event_type', '-occurred_at'], name='event_type_idx'),
                ),
                migrations.AddConstraint(
                    model_name='idempotencyrecord',
                    constraint=models.UniqueConstraint(fields=('api_key', 'key'), name='idempotency_key_unique_per_api_key'),
                ),
                migrations.AddIndex(
                    model_name='webhookdelivery',
                    index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='webhook_due_idx'),
                ),
                migrations.AddConstraint(
                    model_name='webhookdelivery',
                    constraint=models.UniqueConstraint(fields=('event', 'endpoint'), name='webhook_delivery_once'),
                ),
            ],
            database_operations=[],
        ),
    ]
