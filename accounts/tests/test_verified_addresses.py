"""An address is unverified until its owner proves the mailbox (issue 11, item 1): someone who registers
`victim@…` first does not receive the victim's gifts automatically; the emailed link (the gift's, or a password
link) proves the mailbox; the owner who proves it takes the account over and the registrant's sessions end."""

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.models import GiftStatus
from gifts.tests.factories import make_gift
from giftshop.tests.mediastore import PASSWORD, publisher_id

pytestmark = pytest.mark.django_db
VICTIM = "victim@example.com"


def squat(address=VICTIM):
    """An attacker registers the address over the storefront API: the account exists, its mailbox is not proven."""
    body = {"email": address, "password": PASSWORD, "publisherId": publisher_id()}
    response = APIClient().post("/mediastore/customers", body, format="json")
    assert response.status_code == 200
    return Customer.objects.get(email=address), response.json()["responseData"]


def test_a_registered_address_is_unverified_until_the_mailbox_is_proven():
    squatter, _tokens = squat()
    assert squatter.email_verified_at is None and not squatter.mailbox_secured
    assert Customer.objects.create_user("recipient@example.com").mailbox_secured  # password-less: nobody holds it


def test_an_auto_claim_gift_does_not_land_in_an_unverified_account():
    squatter, _tokens = squat()
    gift = make_gift(recipient_email=VICTIM, auto_claim=True)

    assert services.deliver_due_gifts() == 1

    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED  # delivered by email: the mailbox's owner redeems it
    assert not squatter.subscriptions.exists()


def test_an_auto_claim_gift_lands_in_a_verified_or_password_less_account():
    owner = CustomerFactory(email="owner@example.com")  # verified
    gifts = [
        make_gift(recipient_email=owner.email, auto_claim=True),
        make_gift(recipient_email="new@example.com", auto_claim=True),
    ]
    services.deliver_due_gifts()
    for gift in gifts:
        gift.refresh_from_db()
        assert gift.status == GiftStatus.CLAIMED


def test_redeeming_with_the_emailed_link_proves_the_mailbox():
    customer = CustomerFactory(email="robin@example.com", email_verified_at=None)
    gift = make_gift(recipient_email=customer.email)
    services.deliver_due_gifts()
    gift.refresh_from_db()

    services.gift_redeem(customer=customer, code=gift.link_token)

    customer.refresh_from_db()
    assert customer.email_verified_at is not None


def test_a_typed_code_or_someone_elses_link_proves_nothing():
    customer = CustomerFactory(email="robin@example.com", email_verified_at=None)
    other = CustomerFactory(email="sam@example.com")
    typed, linked = make_gift(recipient_email=customer.email), make_gift(recipient_email=other.email)
    services.deliver_due_gifts()
    typed.refresh_from_db()
    linked.refresh_from_db()
    services.gift_redeem(customer=customer, code=typed.code)
    services.gift_redeem(customer=customer, code=linked.link_token)  # forwarded to robin: redeemable, no proof
    customer.refresh_from_db()
    assert customer.email_verified_at is None


def test_the_owner_who_proves_the_mailbox_takes_the_account_over_and_the_squatter_is_out():
    squatter, tokens = squat()
    uid, token = urlsafe_base64_encode(force_bytes(squatter.pk)), default_token_generator.make_token(squatter)
    owner = Client()  # the password link was emailed to the victim's mailbox
    form_page = owner.get(f"/reset/{uid}/{token}/", follow=True)
    form = {"new_password1": "the-owners-Passw0rd!", "new_password2": "the-owners-Passw0rd!"}
    assert owner.post(form_page.request["PATH_INFO"], form).status_code == 302

    account = Customer.objects.get(email=VICTIM)
    assert account.mailbox_secured and account.check_password("the-owners-Passw0rd!")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['jwt']}")
    assert api.get(f"/mediastore/customers/{account.pk}").status_code == 401
    refresh = APIClient().post(
        "/mediastore/auths/refresh_token", {"refreshToken": tokens["refreshToken"]}, format="json"
    )
    assert refresh.status_code == 401
