"""The account's payment-methods page: cards are added through the sandbox gateway (the newest is the default, a
refused number is never echoed) and removed, only by their owner."""

import pytest

from accounts.models import PaymentMethod
from accounts.tests.factories import PaymentMethodFactory
from accounts.tests.web import page

pytestmark = pytest.mark.django_db


def add_card(client, number, exp_month=12, exp_year=2030):
    return client.post(
        "/account/payment-methods/", {"card_number": number, "exp_month": exp_month, "exp_year": exp_year}
    )


def test_it_adds_a_sandbox_card_as_the_default(client, customer):
    old = PaymentMethodFactory(customer=customer, last4="4444", brand="Mastercard")
    response = add_card(client, "4242 4242 4242 4242")
    assert response.status_code == 302
    new = customer.payment_methods.get(is_default=True)
    assert (new.brand, new.last4) == ("Visa", "4242") and new.pk != old.pk
    body = page(client, "/account/payment-methods/")
    assert "Visa •••• 4242" in body and "Mastercard •••• 4444" in body


def test_it_shows_a_refused_card_number_on_its_field_without_echoing_it(client, customer):
    body = add_card(client, "4111111111111111").content.decode()
    assert 'id="id_card_number_error"' in body and "sandbox test card" in body
    assert 'aria-describedby="id_card_number_helptext id_card_number_error"' in body
    assert 'value="4111111111111111"' not in body
    assert not customer.payment_methods.exists()


def test_it_saves_a_card_that_declines_only_when_charged(client, customer):
    # 4000 0000 0000 0002 tokenises fine; the gateway declines it at charge time (billing's tests cover that).
    assert add_card(client, "4000000000000002").status_code == 302
    assert customer.payment_methods.get().last4 == "0002"


def test_it_removes_my_card_and_not_someone_elses(client, customer):
    mine = PaymentMethodFactory(customer=customer)
    theirs = PaymentMethodFactory()
    assert client.get(f"/account/payment-methods/{mine.pk}/remove/").status_code == 405
    assert client.post(f"/account/payment-methods/{theirs.pk}/remove/").status_code == 404
    response = client.post(f"/account/payment-methods/{mine.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/account/payment-methods/"
    assert list(PaymentMethod.objects.all()) == [theirs]
