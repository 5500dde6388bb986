"""A password change or reset ends every other session of the customer: storefront JWTs and refresh tokens (a
session version they carry) and other web sessions (Django's session hash); a refresh token used twice revokes its
whole family; a login's tokens end 30 days after it however often they are rotated (issue 11, item 1)."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts.models import Customer, RefreshToken
from accounts.tests.factories import CustomerFactory
from giftshop.tests.mediastore import publisher_id

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # the factories' password
NEW_PASSWORD = "a-brand-new-Passw0rd!"


def api_login(customer, password=PASSWORD):
    body = {"email": customer.email, "password": password, "publisherId": publisher_id()}
    response = APIClient().post("/mediastore/auths", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["responseData"]


def reads_subscriptions(customer, jwt):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt}")
    return client.get(f"/mediastore/customers/{customer.pk}/subscriptions").status_code


def refresh(token):
    return APIClient().post("/mediastore/auths/refresh_token", {"refreshToken": token}, format="json")


def web_login(customer, password=PASSWORD):
    client = Client()
    assert client.post("/login/", {"username": customer.email, "password": password}).status_code == 302
    return client


def test_a_password_reset_by_the_emailed_link_ends_the_old_storefront_session():
    customer = CustomerFactory()
    stolen = api_login(customer)
    assert reads_subscriptions(customer, stolen["jwt"]) == 200

    uid, token = urlsafe_base64_encode(force_bytes(customer.pk)), default_token_generator.make_token(customer)
    page = Client().get(f"/reset/{uid}/{token}/", follow=True)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert Client(HTTP_COOKIE=page.client.cookies.output(header="", sep=";")).post(page.request["PATH_INFO"], form)
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)

    assert refresh(stolen["refreshToken"]).status_code == 401
    assert reads_subscriptions(customer, stolen["jwt"]) == 401
    assert not RefreshToken.objects.filter(customer=customer).exists()
    fresh = api_login(customer, NEW_PASSWORD)
    assert reads_subscriptions(customer, fresh["jwt"]) == 200


def test_the_emailed_link_proves_the_mailbox():
    customer = CustomerFactory(email_verified_at=None)
    uid, token = urlsafe_base64_encode(force_bytes(customer.pk)), default_token_generator.make_token(customer)
    browser = Client()
    form_page = browser.get(f"/reset/{uid}/{token}/", follow=True)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    assert browser.post(form_page.request["PATH_INFO"], form).status_code == 302
    customer.refresh_from_db()
    assert customer.email_verified_at is not None


def test_the_account_page_changes_the_password_and_ends_every_other_session():
    customer = CustomerFactory()
    stolen_api, other_browser, this_browser = api_login(customer), web_login(customer), web_login(customer)

    page = this_browser.get("/account/password/")
    assert page.status_code == 200 and "Current password" in page.content.decode()
    form = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    response = this_browser.post("/account/password/", form)

    assert response.status_code == 302 and response["Location"] == "/account/password/done/"
    assert this_browser.get("/account/").status_code == 200  # this session stays
    assert other_browser.get("/account/").status_code == 302  # the other browser is signed out
    assert reads_subscriptions(customer, stolen_api["jwt"]) == 401
    assert refresh(stolen_api["refreshToken"]).status_code == 401


def test_the_password_page_wants_the_current_password_and_a_login():
    customer = CustomerFactory()
    assert Client().get("/account/password/").status_code == 302
    browser = web_login(customer)
    form = {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    response = browser.post("/account/password/", form)
    assert response.status_code == 200 and "incorrectly" in response.content.decode()
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)


def test_an_admins_password_change_ends_the_customers_storefront_session(admin_client):
    customer = CustomerFactory()
    session = api_login(customer)
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    response = admin_client.post(f"/admin/accounts/customer/{customer.pk}/password/", form)
    assert response.status_code == 302
    assert reads_subscriptions(customer, session["jwt"]) == 401
    assert refresh(session["refreshToken"]).status_code == 401


def test_a_refresh_token_used_twice_revokes_its_whole_family():
    customer = CustomerFactory()
    first = api_login(customer)["refreshToken"]
    second = refresh(first).json()["responseData"]["refreshToken"]  # the owner rotates

    assert refresh(first).status_code == 401  # a thief replays the stolen first token

    assert refresh(second).status_code == 401  # so the owner's current token is void as well
    assert not RefreshToken.objects.filter(customer=customer, used_at__isnull=True).exists()
    other_login = api_login(customer)["refreshToken"]  # another login's family is not touched
    assert refresh(other_login).status_code == 200


def test_rotating_does_not_stretch_a_login_past_30_days():
    customer = CustomerFactory()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        token = api_login(customer)["refreshToken"]
        for _ in range(4):  # every week, a new token
            clock.shift(timedelta(days=7))
            response = refresh(token)
            assert response.status_code == 200
            token = response.json()["responseData"]["refreshToken"]
        clock.shift(timedelta(days=2, seconds=1))  # 30 days and a second after the login
        assert refresh(token).status_code == 401


def test_a_login_that_rehashes_the_password_keeps_its_own_new_session(settings):
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS, "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    customer = CustomerFactory()
    # Stored by a hasher that is no longer the preferred one: the login re-hashes it, as after a Django upgrade.
    Customer.objects.filter(pk=customer.pk).update(password=make_password(PASSWORD, hasher=PBKDF2PasswordHasher()))
    session = api_login(customer)
    assert reads_subscriptions(customer, session["jwt"]) == 200
    assert refresh(session["refreshToken"]).status_code == 200
