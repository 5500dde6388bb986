import pytest
from django.conf import settings
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


def test_admin_finds_a_gift_by_its_whole_code_through_the_codes_keyed_hash(staff_client):
    gift, other = make_gift(), make_gift()
    url = reverse("admin:gifts_gift_changelist")
    for query in (gift.code, gift.code.lower().replace("-", ""), f" {gift.code} "):
        response = staff_client.get(url, {"q": query})
        assert [found.pk for found in response.context["cl"].result_list] == [gift.pk], query
        assert f"••••-{gift.code_last4}" in response.content.decode()
    assert other.pk not in [found.pk for found in staff_client.get(url, {"q": gift.code}).context["cl"].result_list]


def test_the_gift_list_keeps_to_a_few_columns_with_the_details_on_the_change_page(staff_client):
    gift = make_gift(recipient_email="friend@example.com")

    response = staff_client.get(reverse("admin:gifts_gift_changelist"))
    assert response.context["cl"].list_display[1:] == [
        "id",
        "masked_code",
        "status",
        "offer",
        "recipient_email",
        "scheduled_at",
    ]
    detail = staff_client.get(reverse("admin:gifts_gift_change", args=[gift.pk])).content.decode()
    assert gift.gifter.email in detail and "Sent at" in detail and "Source" in detail


def test_admin_pages_label_the_search_box_and_underline_links_in_text(staff_client):
    body = staff_client.get(reverse("admin:gifts_gift_changelist")).content.decode()

    assert '<label for="searchbar"><img src="/static/admin/img/search.svg" alt="">' in body
    assert '<span class="visually-hidden">Search gifts</span></label>' in body
    assert '<link rel="stylesheet" href="/static/css/admin-overrides.css">' in body
    css = (settings.BASE_DIR / "static" / "css" / "admin-overrides.css").read_text()
    assert "div.breadcrumbs a," in css and "text-decoration: underline;" in css
