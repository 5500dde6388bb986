from django.db import migrations, models


def merchant_gift_subscriptions_never_renew(apps, schema_editor):
    # Until now the renewal engine found these by joining to their merchant gift; the flag says it from now on.
    Subscription = apps.get_model("accounts", "Subscription")
    Subscription.objects.filter(gifts__source="merchant").update(renewable=False)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_site_settings_and_api_plumbing_moved"),
        ("gifts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="renewable",
            field=models.BooleanField(
                default=True,
                help_text="Off for Chargebee's gift subscriptions (merchant API gifts): they never renew, not even "
                "once a card is on file, and end cancelled at the end of their term.",
            ),
        ),
        migrations.RunPython(merchant_gift_subscriptions_never_renew, migrations.RunPython.noop),
    ]
