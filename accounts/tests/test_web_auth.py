"""Logging in, registering, logging out and setting a password by email, on the web pages; ?next= never leaves
the site (SEC-14) and no form posts without a CSRF token (SEC-11)."""

import re
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer
from accounts.selectors import customer_for_email
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from gifts.tests.factories import make_gift

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"
ACCOUNT = "/account/"

# SEC-14: every one of these must send the browser to the default page, never off the site.
OFF_SITE = [
    "//evil.com",
    "https://evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "http:/evil.com",
    "https:evil.com",
    "javascript:alert(1)",
    "data:text/html,x",
    "///evil.com",
    " //evil.com",
    "\t//evil.com",
    "https://testserver@evil.com",
]
SAME_SITE = "/redeem/?giftCode=ABCD-1234"


def passwordless(email="guest@example.com"):
    """A customer as a gift or a guest checkout creates one: no password yet."""
    customer = customer_for_email(email)
    assert not customer.has_usable_password()
    return customer


def log_in(client, email, password=PASSWORD, next_url=None, via="form"):
    data = {"username": email, "password": password}
    url = reverse("accounts:login")
    if next_url is not None and via == "form":
        data["next"] = next_url
    elif next_url is not None:
        url = f"{url}?{urlencode({'next': next_url})}"
    return client.post(url, data)


def register(client, email="new.customer@example.com", password=NEW_PASSWORD, next_url=None, via="form", **extra):
    data = {"email": email, "password1": password, "password2": password, "first_name": "", "last_name": "", **extra}
    url = reverse("accounts:register")
    if next_url is not None and via == "form":
        data["next"] = next_url
    elif next_url is not None:
        url = f"{url}?{urlencode({'next': next_url})}"
    return client.post(url, data)


def logged_in_as(client):
    return Customer.objects.filter(pk=client.session.get("_auth_user_id")).first()


# --- login and logout --------------------------------------------------------------------------------------


def test_it_shows_the_login_page_with_labelled_fields(client):
    body = client.get(reverse("accounts:login")).content.decode()
    assert '<label for="id_username">Email</label>' in body and '<label for="id_password">Password</label>' in body
    assert "csrfmiddlewaretoken" in body


def test_it_logs_a_customer_in_and_sends_them_to_their_account(client):
    customer = CustomerFactory(email="casey@example.com")
    response = log_in(client, "Casey@Example.com")
    assert response.status_code == 302 and response["Location"] == ACCOUNT
    assert logged_in_as(client) == customer


def test_it_refuses_a_wrong_password_with_an_error_on_the_page(client):
    CustomerFactory(email="casey@example.com")
    response = log_in(client, "casey@example.com", password="not it")
    assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
    assert logged_in_as(client) is None


def test_it_refuses_a_customer_who_has_no_password_yet(client):
    guest = passwordless()
    assert log_in(client, guest.email, password="").status_code == 200
    assert logged_in_as(client) is None


def test_it_logs_out_on_post_only(client):
    client.force_login(CustomerFactory())
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response["Location"] == reverse("billing:catalogue")
    assert logged_in_as(client) is None


@pytest.mark.parametrize("via", ["form", "query"])
@pytest.mark.parametrize("next_url", OFF_SITE)
def test_it_never_sends_a_logged_in_customer_off_the_site(client, next_url, via):
    customer = CustomerFactory()
    response = log_in(client, customer.email, next_url=next_url, via=via)
    assert response.status_code == 302 and response["Location"] == ACCOUNT


@pytest.mark.parametrize("via", ["form", "query"])
def test_it_sends_a_logged_in_customer_back_to_the_page_they_came_from(client, via):
    customer = CustomerFactory()
    response = log_in(client, customer.email, next_url=SAME_SITE, via=via)
    assert response.status_code == 302 and response["Location"] == SAME_SITE


def test_it_does_not_carry_an_off_site_next_into_the_login_form(client):
    body = client.get(reverse("accounts:login"), {"next": "//evil.com"}).content.decode()
    assert "evil.com" not in body
    body = client.get(reverse("accounts:login"), {"next": SAME_SITE}).content.decode()
    assert 'name="next" value="/redeem/?giftCode=ABCD-1234"' in body


# --- registration ------------------------------------------------------------------------------------------


REGISTER_DONE = "/register/done/"


def test_it_registers_a_customer_and_emails_them_the_login_page(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = register(client, email="New.Customer@Example.com", first_name="Nia")
    assert response.status_code == 302 and response["Location"] == REGISTER_DONE
    assert "Check your email" in client.get(REGISTER_DONE).content.decode()
    customer = Customer.objects.get(email="new.customer@example.com")
    assert customer.first_name == "Nia" and customer.check_password(NEW_PASSWORD)
    assert logged_in_as(client) is None  # the answer is the same for a taken address, which logs nobody in
    (message,) = mail.outbox
    assert message.to == ["new.customer@example.com"] and f"{settings.SITE_URL}/login/" in message.body
    assert log_in(client, "new.customer@example.com", password=NEW_PASSWORD)["Location"] == ACCOUNT


def test_a_passwordless_customer_who_registers_is_emailed_a_link_to_choose_a_password(
    client, django_capture_on_commit_callbacks
):
    guest = passwordless("guest@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = register(client, email="guest@example.com")
    assert response.status_code == 302 and response["Location"] == REGISTER_DONE
    assert "has no password yet" in mail.outbox[-1].body
    guest.refresh_from_db()
    assert not guest.has_usable_password() and logged_in_as(client) is None  # registering takes nothing over
    link = re.search(r"https?://\S+/reset/\S+", mail.outbox[-1].body).group(0)
    response = client.get("/" + link.split("/", 3)[3], follow=True)  # the link's path, on this test server
    form_url = response.redirect_chain[-1][0]
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    guest.refresh_from_db()
    assert guest.check_password(NEW_PASSWORD)
    assert Customer.objects.filter(email="guest@example.com").count() == 1


def test_it_answers_a_taken_email_as_a_new_one_and_emails_its_owner(client, django_capture_on_commit_callbacks):
    casey = CustomerFactory(email="casey@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = register(client, email="casey@example.com", password="someone else's 1st try")
    assert response.status_code == 302 and response["Location"] == REGISTER_DONE
    assert logged_in_as(client) is None
    casey.refresh_from_db()
    assert casey.check_password(PASSWORD)  # registering takes nothing over
    (message,) = mail.outbox
    assert message.to == ["casey@example.com"] and "Forgot your password?" in message.body


def test_it_shows_the_password_rules_of_the_service_on_the_password_field(client):
    body = register(client, password="12345678").content.decode()
    assert 'id="id_password1_error"' in body and "too common" in body
    assert not Customer.objects.filter(email="new.customer@example.com").exists()


def test_it_asks_for_the_same_password_twice(client):
    body = register(client, password2="something else entirely").content.decode()
    assert 'id="id_password2_error"' in body and "The two passwords differ." in body
    assert not Customer.objects.exists()


@pytest.mark.parametrize("via", ["form", "query"])
@pytest.mark.parametrize("next_url", OFF_SITE)
def test_it_never_sends_a_new_customer_off_the_site(client, next_url, via):
    response = register(client, next_url=next_url, via=via)
    assert response.status_code == 302 and response["Location"] == REGISTER_DONE
    assert "evil" not in client.get(f"{REGISTER_DONE}?{urlencode({'next': next_url})}").content.decode()


@pytest.mark.parametrize("via", ["form", "query"])
def test_it_sends_a_new_customer_back_to_the_page_they_came_from_after_logging_in(client, via):
    response = register(client, next_url=SAME_SITE, via=via)
    assert response.status_code == 302 and response["Location"] == f"{REGISTER_DONE}?{urlencode({'next': SAME_SITE})}"
    login_link = f'href="/login/?next={quote(SAME_SITE, safe="/")}"'
    assert login_link in client.get(response["Location"]).content.decode()


# --- setting a password by email ---------------------------------------------------------------------------


def emailed_link():
    (message,) = mail.outbox
    found = re.search(re.escape(settings.SITE_URL) + r"(/reset/[^/\s]+/[^/\s]+/)", message.body)
    assert found, message.body
    assert found.group(0) in message.alternatives[0][0]  # the HTML part carries the same link
    return found.group(1)


def set_password_through(client, link, password=NEW_PASSWORD):
    form_page = client.get(link)
    assert form_page.status_code == 302  # Django moves the token out of the URL into the session
    assert "Choose a password" in client.get(form_page["Location"]).content.decode()
    return client.post(form_page["Location"], {"new_password1": password, "new_password2": password})


@pytest.mark.parametrize("persona", ["customer", "passwordless guest"])
def test_it_emails_a_link_that_sets_a_password(client, persona, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="casey@example.com") if persona == "customer" else passwordless()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:password_reset"), {"email": customer.email.upper()})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox[0].to == [customer.email]
    assert "Check your email" in client.get(response["Location"]).content.decode()
    link = emailed_link()

    done = set_password_through(client, link)
    assert done.status_code == 302 and done["Location"] == reverse("accounts:password_reset_complete")
    assert "Your password is saved" in client.get(done["Location"]).content.decode()
    assert log_in(Client(), customer.email, password=NEW_PASSWORD)["Location"] == ACCOUNT
    # The link is spent once the password changed.
    assert "This link no longer works" in client.get(link, follow=True).content.decode()


def test_it_answers_an_unknown_email_exactly_like_a_known_one_and_sends_nothing(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_it_refuses_a_forged_reset_link(client):
    customer = passwordless()
    body = client.get(f"/reset/{customer.pk}/forged-token/", follow=True).content.decode()
    assert "This link no longer works" in body


# --- SEC-11: CSRF on every form ----------------------------------------------------------------------------


def csrf_client(customer=None):
    client = Client(enforce_csrf_checks=True)
    if customer is not None:
        client.force_login(customer)
    return client


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/login/", {"username": "casey@example.com", "password": PASSWORD}),
        ("/register/", {"email": "x@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
        ("/password-reset/", {"email": "casey@example.com"}),
    ],
)
def test_it_refuses_an_anonymous_post_without_a_csrf_token(url, data):
    CustomerFactory(email="casey@example.com")
    assert csrf_client().post(url, data).status_code == 403
    assert mail.outbox == []


def test_it_refuses_a_logged_in_post_without_a_csrf_token():
    customer = CustomerFactory()
    card = PaymentMethodFactory(customer=customer)
    gift = make_gift(gifter=customer, scheduled_at=timezone.now() + timedelta(days=10))
    client = csrf_client(customer)
    edit = {"recipient_email": "x@example.com", "recipient_email_again": "x@example.com", "send_now": "on"}
    for url, data in [
        ("/account/", {"first_name": "Mallory"}),
        (f"/account/gifts/{gift.pk}/edit/", edit),
        ("/account/payment-methods/", {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030}),
        (f"/account/payment-methods/{card.pk}/remove/", {}),
        ("/logout/", {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    customer.refresh_from_db()
    gift.refresh_from_db()
    assert customer.first_name == "Casey" and list(customer.payment_methods.all()) == [card]
    assert gift.recipient_email == "friend@example.com"
    assert logged_in_as(client) == customer


def test_it_accepts_the_same_post_with_the_token_of_the_page():
    customer = CustomerFactory()
    client = csrf_client(customer)
    client.get("/account/payment-methods/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/account/payment-methods/",
        {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302 and customer.payment_methods.count() == 1
