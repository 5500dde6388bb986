"""Password guessing is limited like gift-code guessing (giftshop/ratelimit.py): failed logins count, atomically,
against the client address and the address being logged in to; over either limit even the right password is
refused with 429 and Retry-After, on the web and on the storefront API."""

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from giftshop.tests.mediastore import publisher_id

pytestmark = pytest.mark.django_db
RIGHT = "correct horse battery staple"  # the factories' password
WRONG = "not the password"


@pytest.fixture(autouse=True)
def _limit_of_three(settings):
    settings.LOGIN_ATTEMPT_LIMIT = 3


def web_login(email, password, ip="10.0.0.1"):
    client = Client(REMOTE_ADDR=ip)
    return client, client.post("/login/", {"username": email, "password": password})


def api_login(email, password, ip="10.0.0.1"):
    body = {"email": email, "password": password, "publisherId": publisher_id()}
    return APIClient(REMOTE_ADDR=ip).post("/mediastore/auths", body, format="json")


def test_after_three_wrong_passwords_the_web_refuses_even_the_right_one_for_a_while(settings):
    customer = CustomerFactory()
    for _ in range(3):
        _client, response = web_login(customer.email, WRONG)
        assert response.status_code == 200 and "Please enter a correct" in response.content.decode()

    client, response = web_login(customer.email, RIGHT)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.LOGIN_ATTEMPT_WINDOW
    assert "Too many failed logins. Try again in" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_storefront_login_has_the_same_limits():
    customer = CustomerFactory()
    assert [api_login(customer.email, WRONG).status_code for _ in range(3)] == [401, 401, 401]
    refused = api_login(customer.email, RIGHT)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["errors"][0].startswith("Too many failed logins.")


def test_one_address_guessing_many_accounts_is_stopped_by_the_address_limit():
    customers = CustomerFactory.create_batch(4)
    statuses = [api_login(customer.email, WRONG, ip="10.0.0.9").status_code for customer in customers]
    assert statuses == [401, 401, 401, 429]
    assert api_login(customers[3].email, RIGHT, ip="10.0.0.10").status_code == 200  # not that account's fault


def test_many_addresses_guessing_one_account_are_stopped_by_the_account_limit_also_for_an_unknown_address():
    customer = CustomerFactory()
    statuses = [api_login(customer.email, WRONG, ip=f"10.0.1.{n}").status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    # An address without an account is limited alike, so the limit itself reveals nothing.
    statuses = [api_login("nobody@example.com", WRONG, ip=f"10.0.2.{n}").status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_successful_logins_use_up_nothing():
    customer = CustomerFactory()
    assert {api_login(customer.email, RIGHT).status_code for _ in range(10)} == {200}
    assert web_login(customer.email, RIGHT)[1].status_code == 302


def test_while_the_counters_cannot_be_reached_logins_still_work_unlimited(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED}}
    customer = CustomerFactory()
    with caplog.at_level(logging.WARNING, logger="giftshop.security"):
        assert [api_login(customer.email, WRONG).status_code for _ in range(5)] == [401] * 5
        assert api_login(customer.email, RIGHT).status_code == 200
    assert "login attempts not limited: the attempt counters cannot be reached" in caplog.text


CLOSED = "redis://127.0.0.1:1/0"  # nothing listens there: Redis is down


def admin_login(email, password, client=None):
    client = client or Client(REMOTE_ADDR="10.0.3.1")
    return client, client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


def test_the_admin_login_has_the_same_limits(settings):
    staff = CustomerFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        _client, response = admin_login(staff.email, WRONG)
        assert response.status_code == 200 and "Please enter the correct" in response.content.decode()

    client, response = admin_login(staff.email, RIGHT)

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.LOGIN_ATTEMPT_WINDOW
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_admin_login_still_lets_staff_in():
    staff = CustomerFactory(is_staff=True)
    client, response = admin_login(staff.email, RIGHT)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(staff.pk)


def known_device(customer, ip):
    """A browser that logged in to `customer` before and then logged out: it kept only its device cookie."""
    browser = Client(REMOTE_ADDR=ip)
    assert browser.post("/login/", {"username": customer.email, "password": RIGHT}).status_code == 302
    cookie = browser.cookies["giftshop_device"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    device = Client(REMOTE_ADDR=ip)
    device.cookies["giftshop_device"] = cookie.value
    return device


def test_a_stranger_using_up_the_accounts_budget_does_not_lock_out_its_owners_known_device():
    owner = CustomerFactory()
    device = known_device(owner, "10.0.4.1")

    statuses = [web_login(owner.email, WRONG, ip=f"10.0.5.{n}")[1].status_code for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]  # guessing from unknown clients is bounded
    assert web_login(owner.email, RIGHT, ip="10.0.6.1")[1].status_code == 429  # and so is any unknown client

    response = device.post("/login/", {"username": owner.email, "password": RIGHT})
    assert response.status_code == 302  # the owner's own device still gets in
    assert device.session["_auth_user_id"] == str(owner.pk)


def test_a_known_device_guessing_uses_up_its_own_budget():
    owner = CustomerFactory()
    device = known_device(owner, "10.0.4.2")
    statuses = [device.post("/login/", {"username": owner.email, "password": WRONG}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_a_device_cookie_for_another_account_or_forged_is_ignored():
    owner, other = CustomerFactory(), CustomerFactory()
    device = known_device(other, "10.0.4.3")
    for n in range(3):
        web_login(owner.email, WRONG, ip=f"10.0.7.{n}")
    assert device.post("/login/", {"username": owner.email, "password": RIGHT}).status_code == 429
    device.cookies["giftshop_device"] = "forged"
    assert device.post("/login/", {"username": owner.email, "password": RIGHT}).status_code == 429


def test_registrations_are_limited_per_client_on_the_web_and_the_storefront_api(settings):
    settings.REGISTER_LIMIT = 3
    statuses = []
    for n in range(3):
        body = {"email": f"new{n}@example.com", "password": RIGHT, "publisherId": publisher_id()}
        statuses.append(
            APIClient(REMOTE_ADDR="10.0.8.1").post("/mediastore/customers", body, format="json").status_code
        )
    assert statuses == [200, 200, 200]
    body = {"email": "new9@example.com", "password": RIGHT, "publisherId": publisher_id()}
    refused = APIClient(REMOTE_ADDR="10.0.8.1").post("/mediastore/customers", body, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    form = {"email": "web@example.com", "first_name": "", "last_name": "", "password1": RIGHT, "password2": RIGHT}
    page = Client(REMOTE_ADDR="10.0.8.1").post("/register/", form)
    assert page.status_code == 429 and "Too many registrations" in page.content.decode()
    # Another network registers as usual.
    body["email"] = "elsewhere@example.com"
    assert APIClient(REMOTE_ADDR="10.0.8.2").post("/mediastore/customers", body, format="json").status_code == 200
