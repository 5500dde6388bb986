import pytest
from django.core.management import CommandError, call_command

from accounts.models import Customer
from offers.models import GIFTABLE_PERIODS, Offer

pytestmark = pytest.mark.django_db


def test_demo_data_covers_every_giftable_period_and_the_non_giftable_ones(capsys, settings):
    settings.DEBUG = True  # the local demo (bin/run) runs with DEBUG on
    call_command("load_demo_data")
    call_command("load_demo_data")  # safe to repeat
    periods = set(Offer.objects.filter(giftable=True).values_list("period", flat=True))
    assert periods == set(GIFTABLE_PERIODS)
    assert set(Offer.objects.filter(giftable=False).values_list("period", flat=True)) == {"week", "season"}
    assert Offer.objects.count() == 7
    assert Customer.objects.get(email="admin@example.com").is_superuser
    out = capsys.readouterr().out
    assert "admin@example.com / giftshop-admin" in out and "demo@example.com / giftshop-demo" in out


def test_it_refuses_to_run_with_debug_off_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("load_demo_data")
    assert not Customer.objects.filter(email="admin@example.com").exists()
    call_command("load_demo_data", "--force")
    assert Customer.objects.get(email="admin@example.com").is_superuser
