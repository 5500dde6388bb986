import pytest
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_finds_a_gift_by_gifter_recipient_and_code_suffix_and_never_shows_the_whole_code(staff_client):
    gift = make_gift(recipient_email="findme@example.com")
    url = reverse("admin:gifts_gift_changelist")
    for query in ("findme@example.com", gift.gifter.email, gift.code_last4):
        body = staff_client.get(url, {"q": query}).content.decode()
        assert f"••••-{gift.code_last4}" in body, query
        assert gift.code not in body
    detail = staff_client.get(reverse("admin:gifts_gift_change", args=[gift.pk])).content.decode()
    assert gift.code not in detail and gift.code_nonce not in detail


def test_admin_lists_billing_and_outbox_pages(staff_client):
    make_gift()
    for name in ("billing_order", "billing_invoice", "billing_payment", "emails_email"):
        assert staff_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:emails_email_changelist"), {"status__exact": "failed"}).status_code == 200
