import pytest
from django.core.management import call_command

from accounts.models import Customer
from offers.models import GIFTABLE_PERIODS, Offer

pytestmark = pytest.mark.django_db


def test_demo_data_covers_every_giftable_period_and_the_non_giftable_ones(capsys):
    call_command("load_demo_data")
    call_command("load_demo_data")  # safe to repeat
    periods = set(Offer.objects.filter(giftable=True).values_list("period", flat=True))
    assert periods == set(GIFTABLE_PERIODS)
    assert set(Offer.objects.filter(giftable=False).values_list("period", flat=True)) == {"week", "season"}
    assert Offer.objects.count() == 7
    assert Customer.objects.get(email="admin@example.com").is_superuser
    out = capsys.readouterr().out
    assert "admin@example.com / giftshop-admin" in out and "demo@example.com / giftshop-demo" in out
