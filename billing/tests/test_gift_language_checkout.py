"""The gift's language at checkout (issue 17): the gifter chooses the language its recipient reads it in (web form and
storefront API), the order keeps it and the gift made from the order has it; and the merchant API speaks English
whatever language its caller's headers ask for."""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts.tests.factories import CustomerFactory
from billing.models import Order
from billing.tests.test_mediastore_orders import create_order, make_gift_order, patch, pay
from billing.tests.test_web_checkout import gift_form
from gifts.models import DeliveryMethod, Gift
from gifts.tests.merchant import MerchantClient
from giftshop.tests.mediastore import assert_error, client_for, data_of
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english_again():
    """A request in German leaves German active in this thread (LocaleMiddleware activates, nothing deactivates):
    the tests that run next read English."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def offer():
    return OfferFactory(short_id="S777777777", title="Premium yearly", period="year", price=Decimal("99.99"))


def gift_checkout(client, offer, **headers):
    return client.get(reverse("billing:gift_checkout", args=[offer.long_id]), **headers).content.decode()


def language_select(page):
    return re.search(r'<select name="gift_language"[^>]*>(.*?)</select>', page, re.S).group(1)


# --- the web checkout ---------------------------------------------------------------------------------------


def test_it_offers_every_site_language_each_named_in_itself(client, offer):
    options = re.findall(
        r'<option value="([^"]*)"[^>]*>([^<]*)</option>', language_select(gift_checkout(client, offer))
    )
    assert options == [(code, name) for code, name in settings.LANGUAGES]
    assert ("de", "Deutsch") in options and ("pl", "Polski") in options


def test_it_preselects_the_language_the_page_is_read_in(client, offer):
    assert '<option value="en" selected>' in language_select(gift_checkout(client, offer))
    assert '<option value="de" selected>' in language_select(gift_checkout(client, offer, HTTP_ACCEPT_LANGUAGE="de"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pl"
    assert '<option value="pl" selected>' in language_select(gift_checkout(client, offer))


def test_it_says_what_the_language_is_for_and_asks_it_only_for_a_gift(client, offer):
    page = gift_checkout(client, offer)
    assert "The recipient&#x27;s emails, the redeem page and the certificate are in this language." in page
    own = client.get(reverse("billing:checkout", args=[offer.long_id])).content.decode()
    assert 'name="gift_language"' not in own


def test_the_chosen_language_goes_to_the_order_and_the_gift(client, offer):
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, gift_language="pl")
    )
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.gift_language == "pl" and order.gift.language == "pl"


def test_a_form_without_the_field_gives_the_gift_the_pages_language(client, offer):
    form = gift_form(client, offer)
    form.pop("gift_language", None)
    client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form, HTTP_ACCEPT_LANGUAGE="fr")
    assert Gift.objects.get().language == "fr"


def test_a_language_the_site_does_not_offer_is_refused_on_the_form(client, offer):
    response = client.post(
        reverse("billing:gift_checkout", args=[offer.long_id]), gift_form(client, offer, gift_language="ja")
    )
    assert response.status_code == 200 and 'id="id_gift_language_error"' in response.content.decode()
    assert not Order.objects.filter(status=Order.Status.PAID).exists()


def test_a_gift_handed_over_in_person_has_the_chosen_language_for_its_certificate(client, offer):
    form = gift_form(client, offer, delivery_method=DeliveryMethod.HANDOVER, gift_language="es")
    client.post(reverse("billing:gift_checkout", args=[offer.long_id]), form)
    gift = Gift.objects.get()
    assert gift.delivery_method == DeliveryMethod.HANDOVER and gift.language == "es"


# --- the storefront API (PATCH /mediastore/orders/{id} deliveryDetails.language) ----------------------------


@pytest.fixture
def customer():
    return CustomerFactory(email="gifter@example.com", locale="en_US")


@pytest.fixture
def api(customer):
    return client_for(customer)


@pytest.mark.parametrize("given", ["de", "de-DE", "de_DE", "DE-at"])
def test_the_api_takes_a_language_code_or_locale_and_answers_the_sites_language(api, offer, given):
    order = data_of(create_order(api, offer.short_id))["order"]
    updated = make_gift_order(api, order, language=given)
    assert updated["deliveryDetails"]["language"] == "de"
    assert Order.objects.get(pk=order["id"]).gift_language == "de"


@pytest.mark.parametrize("given", ["xx", "ja_JP", "de DE", "12"])
def test_the_api_refuses_a_language_the_site_does_not_offer_naming_the_field(api, offer, given):
    order = data_of(create_order(api, offer.short_id))["order"]
    body = assert_error(patch(api, order, {"buyAsAGift": True, "deliveryDetails": {"language": given}}), 422)
    assert body["responseData"] == {"field": "deliveryDetails.language"}
    assert Order.objects.get(pk=order["id"]).gift_language == "en"  # unchanged


def test_an_api_order_is_in_the_buyers_language_until_one_is_chosen(offer):
    api = client_for(CustomerFactory(locale="fr_FR"))
    order = data_of(create_order(api, offer.short_id))["order"]
    assert order["deliveryDetails"]["language"] == "fr"


def test_the_language_chosen_through_the_api_is_the_paid_gifts(api, offer):
    order = data_of(create_order(api, offer.short_id))["order"]
    make_gift_order(api, order, language="pl_PL")
    assert pay(api, order).status_code == 200
    assert Gift.objects.get(order_id=order["id"]).language == "pl"


# --- the merchant API speaks English ------------------------------------------------------------------------


def test_the_merchant_api_answers_in_english_whatever_language_is_asked_for():
    merchant = MerchantClient()
    merchant.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    response = merchant.client.delete("/api/v2/gifts", HTTP_ACCEPT_LANGUAGE="de", **merchant.headers())
    assert response.status_code == 405
    assert response.json()["message"] == 'Method "DELETE" not allowed.'  # Django REST framework's German is not used
    assert response["Content-Language"] == "en"


def test_the_storefront_api_keeps_the_callers_language(api):
    # The contrast: outside /api/v2/, DRF's own messages follow Accept-Language (here German).
    response = api.delete("/mediastore/orders", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 405
    assert "DELETE" in response.content.decode() and 'Method "DELETE" not allowed.' not in response.content.decode()
