"""An address is unverified until its owner proves the mailbox (issue 11, item 1): someone who registers
`victim@…` first does not receive the victim's gifts automatically; the emailed link (the gift's, or a password
link) proves the mailbox; the owner who proves it takes the account over and the registrant's sessions end."""

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts.models import Customer
from accounts.selectors import customer_for_email
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
    tokens = response.json()["responseData"]
    return Customer.objects.get(pk=tokens["customerId"]), tokens


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


def confirm_link(message):
    """The path of the confirm-address link in a welcome email."""
    return "/" + re.search(r"https?://\S+/account/confirm/\S+/", message.body).group(0).split("/", 3)[3]


def test_a_new_storefront_account_is_welcomed_with_a_link_that_proves_its_mailbox(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        customer, _tokens = squat("newcomer@example.com")
    (message,) = mail.outbox
    assert message.to == ["newcomer@example.com"] and "confirm" in message.subject.lower()
    assert customer.email_verified_at is None

    page = Client().get(confirm_link(message))
    assert page.status_code == 200 and "Your address is confirmed" in page.content.decode()
    customer.refresh_from_db()
    assert customer.email_verified_at is not None and customer.mailbox_secured
    again = Client().get(confirm_link(message))  # a used link says it is done, and changes nothing
    assert again.status_code == 200 and "confirmed before" in again.content.decode()


@pytest.mark.parametrize(
    "path",
    ["/account/confirm/MQ/wrong-token/", "/account/confirm/not-base64!/x-y/", f"/account/confirm/{'9' * 40}/x-y/"],
)
def test_a_wrong_confirm_link_says_it_expired_and_proves_nothing(path):
    customer = CustomerFactory(email_verified_at=None)
    page = Client().get(path.replace("MQ", urlsafe_base64_encode(force_bytes(customer.pk))))
    assert page.status_code == 400 and "This link has expired" in page.content.decode()
    customer.refresh_from_db()
    assert customer.email_verified_at is None


def test_a_duplicate_registration_ends_when_the_owner_proves_the_mailbox(django_capture_on_commit_callbacks):
    owner = CustomerFactory(email=VICTIM)  # verified already
    with django_capture_on_commit_callbacks(execute=True):
        duplicate, tokens = squat()
    assert duplicate.duplicate_of == owner
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['jwt']}")
    assert api.get(f"/mediastore/customers/{duplicate.pk}").status_code == 200

    # The owner's email about the registration offers a new password; choosing it proves the mailbox.
    (message,) = mail.outbox
    path = "/" + re.search(r"https?://\S+/reset/\S+", message.body).group(0).split("/", 3)[3]
    owner_browser = Client()
    form_page = owner_browser.get(path, follow=True)
    form = {"new_password1": "the-owners-Passw0rd!", "new_password2": "the-owners-Passw0rd!"}
    assert owner_browser.post(form_page.request["PATH_INFO"], form).status_code == 302

    assert api.get(f"/mediastore/customers/{duplicate.pk}").status_code == 401
    refresh = APIClient().post(
        "/mediastore/auths/refresh_token", {"refreshToken": tokens["refreshToken"]}, format="json"
    )
    assert refresh.status_code == 401
    duplicate.refresh_from_db()
    assert not duplicate.is_active


def test_a_duplicate_never_receives_the_addresss_gifts_nor_its_password_links(django_capture_on_commit_callbacks):
    owner = customer_for_email(VICTIM)  # made by a gift or a guest checkout: no password
    with django_capture_on_commit_callbacks(execute=True):
        duplicate, _tokens = squat()
    gift = make_gift(recipient_email=VICTIM, auto_claim=True)
    services.deliver_due_gifts()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CLAIMED and gift.receiver == owner
    assert not duplicate.subscriptions.exists()
    # The registration emailed the address a link to choose the account's password (once an hour, so the
    # password page's request adds none): the account's, never the duplicate's.
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/password-reset/", {"email": VICTIM})
    (message,) = [m for m in mail.outbox if "/reset/" in m.body]
    assert f"/reset/{urlsafe_base64_encode(force_bytes(owner.pk))}/" in message.body


def test_two_registrations_of_one_new_address_at_once_make_one_account_and_one_duplicate():
    first, _ = squat("twice@example.com")
    second = APIClient().post(
        "/mediastore/customers",
        {"email": "TWICE@example.com", "password": PASSWORD, "publisherId": publisher_id()},
        format="json",
    )
    assert second.status_code == 200
    assert Customer.objects.owning("twice@example.com").get() == first
    assert Customer.objects.get(pk=second.json()["responseData"]["customerId"]).duplicate_of == first
