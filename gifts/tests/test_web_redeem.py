"""The redeem page: the emailed link shows the gift at once; a recipient without an account (or without a password)
chooses one and redeems in one POST, one with an account logs in and confirms; a typed code is verified (POST, then a
GET) and confirmed; a GET never redeems."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import emails as account_emails
from accounts.models import Customer, Subscription
from accounts.selectors import customer_for_email
from accounts.tests.factories import CustomerFactory, SubscriptionFactory
from emails.models import Email
from gifts import services
from gifts.tests.factories import GuestFactory, make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Violet marmalade 77 skyline"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def delivered_gift():
    gifter = GuestFactory(first_name="Ana", last_name="Lima")
    offer = OfferFactory(title="Premium monthly", tags=["premium"], period="month")
    gift = make_gift(gifter=gifter, offer=offer, personal_note="Happy birthday, Peter!")
    services.deliver_due_gifts(send=False)
    gift.refresh_from_db()
    return gift


def test_opening_the_emailed_link_many_times_never_redeems(client, delivered_gift):
    url = f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}"
    for _ in range(5):
        response = client.get(url)
        assert response.status_code == 200 and delivered_gift.code in response.content.decode()
    client.force_login(CustomerFactory())
    assert delivered_gift.code in client.get(url).content.decode()
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"


def test_a_visitor_is_sent_to_log_in_or_register_and_back_with_the_code(client, delivered_gift):
    body = client.get(f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}").content.decode()
    assert f"next=/redeem/%3FgiftCode%3D{delivered_gift.code}" in body
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"


def test_verify_then_confirm_redeems_once_into_a_new_subscription(client, delivered_gift):
    recipient = CustomerFactory()
    client.force_login(recipient)
    verified = client.post(
        reverse("gifts:redeem"), {"code": delivered_gift.code.lower(), "action": "verify"}, follow=True
    )
    assert verified.redirect_chain == [(f"/redeem/?giftCode={delivered_gift.code}", 302)]
    assert "Redeeming starts a new Premium monthly subscription" in verified.content.decode()
    done = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert done.status_code == 302
    page = client.get(done.url).content.decode()
    assert "add a payment method" in page
    assert Subscription.objects.get(customer=recipient).status == "active"
    again = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert again.status_code == 409 and "already been redeemed" in again.content.decode()
    assert Subscription.objects.filter(customer=recipient).count() == 1


def test_a_subscriber_is_told_the_gift_extends_their_subscription(client, delivered_gift):
    subscriber = CustomerFactory()
    held = SubscriptionFactory(
        customer=subscriber,
        offer=OfferFactory(title="Premium yearly", tags=["premium"]),
        term_end=timezone.now() + timedelta(days=30),
    )
    client.force_login(subscriber)
    verify = {"code": delivered_gift.code, "action": "verify"}
    body = client.post(reverse("gifts:redeem"), verify, follow=True).content.decode()
    assert "extends your Premium yearly subscription to" in body
    client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    held.refresh_from_db()
    assert held.term_end > timezone.now() + timedelta(days=50)


def test_the_redeem_page_leaks_no_referrer_and_loads_nothing_foreign(client, delivered_gift):
    response = client.get(f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}")
    assert response["Referrer-Policy"] == "same-origin"  # "no-referrer" makes the page's own POSTs fail CSRF
    csp = response["Content-Security-Policy"]
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"


def test_redeeming_without_a_csrf_token_or_from_a_foreign_origin_is_refused(delivered_gift):
    client = Client(enforce_csrf_checks=True)
    client.force_login(CustomerFactory())
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    assert response.status_code == 403
    page = client.get(reverse("gifts:redeem"))
    token = page.cookies["csrftoken"].value
    foreign = client.post(
        reverse("gifts:redeem"),
        {"code": delivered_gift.code, "action": "confirm", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert foreign.status_code == 403
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"
    ok = client.post(
        reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm", "csrfmiddlewaretoken": token}
    )
    assert ok.status_code == 302


def test_guessing_codes_on_the_page_is_limited(client, settings, delivered_gift):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    client.force_login(CustomerFactory())
    statuses = [
        client.post(reverse("gifts:redeem"), {"code": f"ZZZZ-000{n}", "action": "verify"}).status_code for n in range(4)
    ]
    assert statuses == [404, 404, 404, 429]
    response = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"})
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()


def link(gift):
    return f"{reverse('gifts:redeem')}?giftCode={gift.code}&t={gift.link_token}"


def claim(client, gift, **fields):
    form = {"code": gift.code, "t": gift.link_token, "action": "claim", "password": PASSWORD, **fields}
    return client.post(reverse("gifts:redeem"), form)


def test_the_link_says_what_the_gift_is_before_anything_else(client, delivered_gift):
    body = client.get(link(delivered_gift)).content.decode()
    assert "Ana Lima sent you <strong>Premium monthly</strong>" in body
    for fact in ("<dt>Period</dt><dd>1 month</dd>", "<dt>From</dt><dd>Ana Lima</dd>", "Happy birthday, Peter!"):
        assert fact in body
    assert "<dt>Redeem by</dt>" in body and "UTC</dd>" in body
    assert "Redeeming starts a new Premium monthly subscription" in body
    assert "If you already subscribe to Premium monthly or a plan with the same access, it adds 1 month" in body
    assert body.index("sent you") < body.index("Choose a password")


def test_no_detail_of_a_gift_shows_without_a_valid_token_or_a_verified_code(client, delivered_gift):
    forged = f"{delivered_gift.pk}.{'A' * 22}"
    for url in (
        f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}",  # a code in a URL is not verified by a GET
        f"{reverse('gifts:redeem')}?giftCode={delivered_gift.code}&t={forged}",
    ):
        body = client.get(url).content.decode()
        assert "Happy birthday" not in body and "Ana Lima" not in body and "Premium monthly" not in body


def test_a_recipient_without_an_account_chooses_a_password_and_redeems_in_one_post(client, delivered_gift):
    body = client.get(link(delivered_gift)).content.decode()
    assert "Choose a password to redeem it" in body and "friend@example.com" in body
    assert 'value="claim"' in body and 'autocomplete="new-password"' in body
    done = claim(client, delivered_gift, first_name="Peter", email="someone.else@example.com")
    assert done.status_code == 302 and done.url == reverse("gifts:redeemed", args=[delivered_gift.pk])
    peter = Customer.objects.get(email="friend@example.com")
    assert peter.check_password(PASSWORD) and peter.email_verified_at is not None
    assert (peter.first_name, peter.last_name) == ("Peter", "")
    assert not Customer.objects.filter(email="someone.else@example.com").exists()  # always the gift's address
    delivered_gift.refresh_from_db()
    assert (delivered_gift.status, delivered_gift.receiver) == ("claimed", peter)
    page = client.get(done.url)  # logged in
    assert page.status_code == 200 and "Enjoy your gift!" in page.content.decode()
    assert int(client.session["_auth_user_id"]) == peter.pk


def test_an_account_made_without_a_password_for_a_gift_is_claimed_the_same_way(client, delivered_gift):
    made = customer_for_email("friend@example.com")
    assert not made.has_usable_password()
    assert claim(client, delivered_gift).status_code == 302
    made.refresh_from_db()
    assert made.check_password(PASSWORD) and made.email_verified_at is not None
    assert Customer.objects.filter(email__iexact="friend@example.com").count() == 1
    delivered_gift.refresh_from_db()
    assert delivered_gift.receiver == made


def test_an_address_with_a_password_logs_in_and_confirms_and_never_gets_a_password_from_the_page(
    client, delivered_gift
):
    owner = CustomerFactory(email="friend@example.com")
    body = client.get(link(delivered_gift)).content.decode()
    assert "Choose a password" not in body and 'value="claim"' not in body
    assert "has a Giftshop account: log in to redeem your gift" in body
    assert f"next=/redeem/%3FgiftCode%3D{delivered_gift.code}%26t%3D{delivered_gift.link_token}" in body
    refused = claim(client, delivered_gift)  # a hand-made POST
    assert refused.status_code == 409 and "log in to redeem" in refused.content.decode()
    owner.refresh_from_db()
    assert owner.check_password("correct horse battery staple") and "_auth_user_id" not in client.session
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"

    client.force_login(owner)  # step 1: log in (the login page comes back to `next`)
    body = client.get(link(delivered_gift)).content.decode()
    assert "Ana Lima sent you" in body and 'value="confirm"' in body
    done = client.post(  # step 2: confirm
        reverse("gifts:redeem"), {"code": delivered_gift.code, "t": delivered_gift.link_token, "action": "confirm"}
    )
    assert done.status_code == 302
    delivered_gift.refresh_from_db()
    assert (delivered_gift.status, delivered_gift.receiver) == ("claimed", owner)


def test_a_password_is_set_only_with_the_gifts_valid_link_token(client, delivered_gift):
    typed = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "claim", "password": PASSWORD})
    assert typed.status_code == 302 and typed.url.startswith(reverse("gifts:redeem"))
    forged = client.post(
        reverse("gifts:redeem"),
        {"t": f"{delivered_gift.pk}.{'A' * 22}", "action": "claim", "password": PASSWORD},
    )
    assert forged.status_code == 404 and "link is not valid" in forged.content.decode()
    assert not Customer.objects.filter(email="friend@example.com").exists()
    delivered_gift.refresh_from_db()
    assert delivered_gift.status == "unclaimed"


def test_a_weak_password_is_refused_beside_its_field_and_changes_nothing(client, delivered_gift):
    response = claim(client, delivered_gift, password="12345678")
    body = response.content.decode()
    assert response.status_code == 422 and 'id="id_password_error"' in body and "too common" in body
    assert "Ana Lima sent you" in body and 'value="claim"' in body  # the form again, with the gift
    assert not Customer.objects.filter(email="friend@example.com").exists()


def test_a_redeemed_gift_is_refused_as_an_error_and_makes_no_account(client, delivered_gift):
    services.gift_redeem(customer=CustomerFactory(), code=delivered_gift.code)
    response = client.get(link(delivered_gift))
    body = response.content.decode()
    assert response.status_code == 409
    assert '<p class="errorlist" role="alert">This gift code has already been redeemed.</p>' in body
    assert "Choose a password" not in body and "Happy birthday" not in body
    assert claim(client, delivered_gift).status_code == 409
    assert not Customer.objects.filter(email="friend@example.com").exists()


def test_wrong_tokens_on_the_password_form_use_up_the_visitors_attempts(client, settings, delivered_gift):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 2
    forged = {"action": "claim", "password": PASSWORD}
    statuses = [
        client.post(reverse("gifts:redeem"), {**forged, "t": f"{delivered_gift.pk}.{n * 22}"}).status_code
        for n in ("A", "B")
    ]
    assert statuses == [404, 404]
    assert claim(client, delivered_gift).status_code == 429
    assert not Customer.objects.filter(email="friend@example.com").exists()


def test_a_visitor_types_a_code_before_logging_in_then_logs_in_and_confirms(client, delivered_gift):
    page = client.get(reverse("gifts:redeem")).content.decode()
    assert 'name="code"' in page and 'value="verify"' in page
    typed = delivered_gift.code.lower().replace("-", "\u2014")  # pasted with an em dash
    verified = client.post(reverse("gifts:redeem"), {"code": typed, "action": "verify"}, follow=True)
    body = verified.content.decode()
    assert verified.redirect_chain == [(f"/redeem/?giftCode={delivered_gift.code}", 302)]
    assert "Ana Lima sent you" in body and "Happy birthday, Peter!" in body
    assert "Create an account" in body and "Choose a password" not in body  # a typed code sets no password
    recipient = CustomerFactory()
    client.force_login(recipient)  # the session keeps the verified code across the login
    body = client.get(f"/redeem/?giftCode={delivered_gift.code}").content.decode()
    assert 'value="confirm"' in body
    client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    delivered_gift.refresh_from_db()
    assert delivered_gift.receiver == recipient


def test_verify_answers_with_a_redirect_so_back_never_resubmits(client, delivered_gift):
    client.force_login(CustomerFactory())
    verified = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"})
    assert verified.status_code == 302
    for _ in range(2):  # Back, Forward, reload: GETs that verify again
        body = client.get(verified.url).content.decode()
        assert 'value="confirm"' in body
    client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "confirm"})
    again = client.get(verified.url)  # Back after redeeming
    assert (
        again.status_code == 409
        and 'class="errorlist" role="alert">This gift code has already' in again.content.decode()
    )


def test_a_wrong_code_and_a_redeemed_one_are_shown_alike_as_errors(client, delivered_gift):
    client.force_login(CustomerFactory())
    wrong = client.post(reverse("gifts:redeem"), {"code": "ZZZZ-0000", "action": "verify"})
    assert wrong.status_code == 404 and '<p class="errorlist" role="alert">No gift has this code.</p>' in (
        wrong.content.decode()
    )
    services.gift_redeem(customer=CustomerFactory(), code=delivered_gift.code)
    redeemed = client.post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"}, follow=True)
    assert '<p class="errorlist" role="alert">This gift code has already been redeemed.</p>' in (
        redeemed.content.decode()
    )


def test_visitors_typing_codes_are_limited_by_their_own_address(client, settings, delivered_gift):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    guesses = [
        client.post(reverse("gifts:redeem"), {"code": f"ZZZZ-000{n}", "action": "verify"}, REMOTE_ADDR="192.0.2.1")
        for n in range(4)
    ]
    assert [g.status_code for g in guesses] == [404, 404, 404, 429]
    other = Client().post(reverse("gifts:redeem"), {"code": delivered_gift.code, "action": "verify"})
    assert other.status_code == 302  # another visitor is not refused for the first one's guesses


def test_the_account_pages_and_emails_send_a_recipient_back_to_the_gift_link(client):
    body = client.get(reverse("accounts:register")).content.decode()
    assert "the gift is in your account" not in body  # it was not: registering never redeemed anything
    assert "“Redeem your gift” link in its email" in body
    for customer in (CustomerFactory(), customer_for_email("guest@example.com")):
        context = account_emails.set_password(Email(to_email=customer.email))
        for part in ("txt", "html"):
            text = render_to_string(f"emails/set-password-body.{part}", context)
            assert "Redeem your gift" in text and "link in its email" in text
