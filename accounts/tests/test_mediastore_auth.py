"""The storefront's login, registration, tokens, customer profile and envelope, over HTTP (/mediastore/)."""

import base64
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Customer
from accounts.selectors import customer_for_email
from accounts.tests.factories import CustomerFactory
from gifts import services as gift_services
from gifts.tests.factories import make_gift
from giftshop.tests.mediastore import PASSWORD, assert_error, client_for, data_of, publisher_id, register

pytestmark = pytest.mark.django_db
FACTORY_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_attempts_left_over():
    cache.clear()  # the gift-code attempt counters live in the cache (this run's own Redis db)


def login(email, password=FACTORY_PASSWORD, publisher=None):
    return APIClient().post(
        "/mediastore/auths",
        {"email": email, "password": password, "publisherId": publisher or publisher_id()},
        format="json",
    )


def payload_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def me(client, customer_id):
    return client.get(f"/mediastore/customers/{customer_id}")


# --- login -------------------------------------------------------------------------------------------------


def test_it_logs_a_customer_in_with_a_jwt_a_refresh_token_and_the_customer_id():
    customer = CustomerFactory(email="casey@example.com")
    data = data_of(login("Casey@Example.com "))
    assert set(data) == {"jwt", "refreshToken", "customerToken", "customerId"}
    assert data["customerId"] == customer.pk
    assert data["jwt"] and data["refreshToken"] and data["customerToken"]
    authed = APIClient()
    authed.credentials(HTTP_AUTHORIZATION=f"Bearer {data['jwt']}")
    assert data_of(me(authed, customer.pk))["email"] == "casey@example.com"


def test_it_refuses_a_wrong_password_with_user0001():
    customer = CustomerFactory()
    assert_error(login(customer.email, "not the password"), 401, "USER0001")


def test_it_answers_an_unknown_email_exactly_like_a_wrong_password():
    wrong_password = assert_error(login(CustomerFactory().email, "not the password"), 401, "USER0001")
    unknown_email = assert_error(login("nobody@example.com", "not the password"), 401, "USER0001")
    assert unknown_email == wrong_password


def test_it_refuses_an_unknown_publisher_id_with_422():
    customer = CustomerFactory()
    assert_error(login(customer.email, publisher="999999999"), 422, "REQ0001")


def test_it_refuses_a_login_without_a_password_with_req0001():
    response = APIClient().post(
        "/mediastore/auths", {"email": "a@example.com", "publisherId": publisher_id()}, format="json"
    )
    body = assert_error(response, 422, "REQ0001")
    assert "password" in body["errors"][0]


def test_a_customer_without_a_password_cannot_log_in():
    recipient = customer_for_email("friend@example.com")
    assert not recipient.has_usable_password()
    assert_error(login("friend@example.com", ""), 422, "REQ0001")
    assert_error(login("friend@example.com", "anything-at-all"), 401, "USER0001")


def test_a_deactivated_customer_cannot_log_in():
    customer = CustomerFactory(is_active=False)
    assert_error(login(customer.email), 401, "USER0001")


# --- registration ------------------------------------------------------------------------------------------


def test_it_registers_a_customer_and_answers_like_a_login():
    _client, customer_id, data = register("New.Person@Example.com", country="us", currency="usd", locale="de_DE")
    assert set(data) == {"jwt", "refreshToken", "customerToken", "customerId"}
    customer = Customer.objects.get(pk=customer_id)
    assert (customer.email, customer.country, customer.currency, customer.locale) == (
        "new.person@example.com",
        "US",
        "USD",
        "de_DE",
    )
    assert data_of(login("new.person@example.com", PASSWORD))["customerId"] == customer_id


def test_registering_a_taken_address_answers_like_a_new_one_with_a_duplicate_that_holds_nothing(
    django_capture_on_commit_callbacks,
):
    # Was USER0002 ("customer exists"), which told anyone which addresses have accounts (issue 11, items 1 and 10).
    owner = CustomerFactory(email="taken@example.com")
    make_gift(recipient_email=owner.email, auto_claim=True)
    gift_services.deliver_due_gifts()  # the owner holds a subscription from a gift
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/mediastore/customers",
            {"email": "Taken@Example.com", "password": PASSWORD, "publisherId": publisher_id()},
            format="json",
        )
    tokens = data_of(response)
    assert set(tokens) == {"jwt", "refreshToken", "customerToken", "customerId"}
    duplicate = Customer.objects.get(pk=tokens["customerId"])
    assert duplicate.duplicate_of == owner and duplicate.email == owner.email and not duplicate.mailbox_secured

    # Its session sees only its own (empty) account; the address's login is still the owner's.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['jwt']}")
    assert data_of(api.get(f"/mediastore/customers/{duplicate.pk}/subscriptions"))["items"] == []
    assert api.get(f"/mediastore/customers/{owner.pk}/subscriptions").status_code == 404
    assert data_of(login("taken@example.com"))["customerId"] == owner.pk
    assert_error(login("taken@example.com", PASSWORD), 401, "USER0001")
    # The owner hears of it, with a link to choose a new password; the registrant is told nothing more.
    (message,) = [m for m in mail.outbox if m.to == ["taken@example.com"] and "register" in m.body]
    assert "/reset/" in message.body


@pytest.mark.parametrize("password", ["short", "password123", "12345678901234", "weak@example.com"])
def test_it_refuses_a_weak_password_with_422(password):
    response = APIClient().post(
        "/mediastore/customers",
        {"email": "weak@example.com", "password": password, "publisherId": publisher_id()},
        format="json",
    )
    body = assert_error(response, 422)
    assert body["responseData"] == {"field": "password"}
    assert not Customer.objects.filter(email="weak@example.com").exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "x@example.com\r\nBcc: y@example.com", ""])
def test_it_refuses_to_register_an_invalid_email_with_422(email):
    response = APIClient().post(
        "/mediastore/customers", {"email": email, "password": PASSWORD, "publisherId": publisher_id()}, format="json"
    )
    assert_error(response, 422)
    assert Customer.objects.count() == 0


def test_it_refuses_to_register_for_an_unknown_publisher():
    response = APIClient().post(
        "/mediastore/customers", {"email": "a@example.com", "password": PASSWORD, "publisherId": "1"}, format="json"
    )
    assert_error(response, 422, "REQ0001")
    assert Customer.objects.count() == 0


def test_a_customer_created_by_a_gift_who_registers_is_emailed_a_link_and_then_owns_the_account(
    client, django_capture_on_commit_callbacks
):
    gift = make_gift(recipient_email="friend@example.com", auto_claim=True)
    gift_services.deliver_due_gifts()  # auto-claim creates the recipient's account, without a password
    recipient = Customer.objects.get(email="friend@example.com")
    assert not recipient.has_usable_password()

    # Registering does not take the account over (it answers as for a new address, with a duplicate's tokens):
    # whoever holds the mailbox gets a link to choose a password.
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/mediastore/customers",
            {"email": "Friend@Example.com", "password": PASSWORD, "publisherId": publisher_id()},
            format="json",
        )
    squatted = APIClient()
    squatted.credentials(HTTP_AUTHORIZATION=f"Bearer {data_of(response)['jwt']}")
    duplicate_id = data_of(response)["customerId"]
    assert data_of(squatted.get(f"/mediastore/customers/{duplicate_id}/subscriptions"))["items"] == []
    recipient.refresh_from_db()
    assert not recipient.has_usable_password()
    link = next(m for m in mail.outbox if m.to == ["friend@example.com"] and "/reset/" in m.body).body
    path = "/" + re.search(r"https?://\S+/reset/\S+", link).group(0).split("/", 3)[3]
    form_url = client.get(path, follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})

    logged_in = data_of(login("friend@example.com", PASSWORD))
    assert logged_in["customerId"] == recipient.pk
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {logged_in['jwt']}")
    subscriptions = data_of(api.get(f"/mediastore/customers/{recipient.pk}/subscriptions"))["items"]
    assert [s["offerId"] for s in subscriptions] == [gift.offer.long_id]
    # Proving the mailbox ended the duplicate registration's session.
    assert_error(squatted.get(f"/mediastore/customers/{duplicate_id}/subscriptions"), 401, "AUTH0002")


# --- refresh tokens ----------------------------------------------------------------------------------------


def refresh(token):
    return APIClient().post("/mediastore/auths/refresh_token", {"refreshToken": token}, format="json")


def test_a_refresh_token_gives_a_new_jwt_and_refresh_token_once():
    customer = CustomerFactory()
    first = data_of(login(customer.email))["refreshToken"]
    renewed = data_of(refresh(first))
    assert set(renewed) == {"jwt", "refreshToken"}
    assert payload_of(renewed["jwt"])["customerId"] == customer.pk
    assert renewed["refreshToken"] != first

    assert data_of(refresh(renewed["refreshToken"]))["jwt"]  # the newest token works, once


def test_a_spent_refresh_token_is_refused_and_revokes_its_family():
    customer = CustomerFactory()
    first = data_of(login(customer.email))["refreshToken"]
    renewed = data_of(refresh(first))
    assert_error(refresh(first), 401)
    assert_error(refresh(renewed["refreshToken"]), 401)  # a replayed token means a stolen copy: the chain ends


def test_a_client_still_sending_its_expired_jwt_can_refresh_and_log_in_again():
    customer = CustomerFactory()
    refresh_token = data_of(login(customer.email))["refreshToken"]
    with time_machine.travel(datetime.now(UTC)) as traveller:
        stale = client_for(customer)
        traveller.shift(timedelta(minutes=20))
        assert_error(me(stale, customer.pk), 401, "AUTH0003")
        body = {"refreshToken": refresh_token}
        renewed = data_of(stale.post("/mediastore/auths/refresh_token", body, format="json"))
        assert payload_of(renewed["jwt"])["customerId"] == customer.pk
        body = {"email": customer.email, "password": FACTORY_PASSWORD, "publisherId": publisher_id()}
        assert data_of(stale.post("/mediastore/auths", body, format="json"))["customerId"] == customer.pk


@pytest.mark.parametrize(("token", "status"), [("", 422), ("not-a-token", 401), ("x" * 500, 401)])
def test_an_unknown_refresh_token_is_refused(token, status):
    assert_error(refresh(token), status)


def test_a_refresh_token_stops_working_after_30_days():
    customer = CustomerFactory()
    token = data_of(login(customer.email))["refreshToken"]
    with time_machine.travel(datetime.now(UTC) + timedelta(days=30, seconds=1)):
        assert_error(refresh(token), 401)


def test_a_refresh_token_of_a_deactivated_customer_is_refused():
    customer = CustomerFactory()
    token = data_of(login(customer.email))["refreshToken"]
    Customer.objects.filter(pk=customer.pk).update(is_active=False)
    assert_error(refresh(token), 401)


@pytest.mark.django_db(transaction=True)
def test_concurrent_uses_of_one_refresh_token_get_exactly_one_success():
    customer = CustomerFactory()
    token = data_of(login(customer.email))["refreshToken"]
    threads = 8
    barrier = threading.Barrier(threads)

    def use(_):
        try:
            barrier.wait(timeout=10)
            return refresh(token).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        statuses = sorted(pool.map(use, range(threads)))
    assert statuses == [200] + [401] * (threads - 1)


# --- the JWT -----------------------------------------------------------------------------------------------


def test_the_jwt_carries_customer_id_publisher_id_and_a_15_minute_expiry():
    customer = CustomerFactory()
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        token = data_of(login(customer.email))["jwt"]
    payload = payload_of(token)
    assert payload["customerId"] == customer.pk
    assert str(payload["publisherId"]) == publisher_id()
    assert payload["exp"] == int(datetime(2026, 3, 1, 12, 15, tzinfo=UTC).timestamp())
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_it_answers_a_request_without_a_token_with_auth0001():
    customer = CustomerFactory()
    response = me(APIClient(), customer.pk)
    assert_error(response, 401, "AUTH0001")
    assert response["WWW-Authenticate"].startswith("Bearer")


def _forged(customer, *, key="someone-else-s-key-of-at-least-32-bytes", algorithm="HS256", **claims):
    payload = {
        "customerId": customer.pk,
        "publisherId": publisher_id(),
        "exp": int((datetime.now(UTC) + timedelta(minutes=10)).timestamp()),
        **claims,
    }
    return jwt.encode(payload, key if algorithm != "none" else None, algorithm=algorithm)


def _swap_payload(token, **claims):
    """A genuine token whose payload was edited, keeping the original signature."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda c, victim: "Bearer garbage", id="garbage"),
        pytest.param(lambda c, victim: "Bearer a.b.c", id="three-garbage-parts"),
        pytest.param(lambda c, victim: f"Bearer {_forged(c)}", id="wrong-key"),
        pytest.param(lambda c, victim: f"Bearer {_forged(c, algorithm='none')}", id="alg-none"),
        pytest.param(lambda c, victim: f"Bearer {_forged(victim, algorithm='none')}", id="alg-none-other-customer"),
        pytest.param(
            lambda c, victim: f"Bearer {_swap_payload(data_of(login(c.email))['jwt'], customerId=victim.pk)}",
            id="payload-edited",
        ),
        pytest.param(lambda c, victim: f"Token {data_of(login(c.email))['jwt']}", id="wrong-scheme"),
        pytest.param(lambda c, victim: "Bearer", id="no-token-after-bearer"),
        pytest.param(lambda c, victim: "Bearer a b", id="too-many-parts"),
    ],
)
def test_it_answers_an_invalid_token_with_auth0002(make_header):
    customer, victim = CustomerFactory(), CustomerFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=make_header(customer, victim))
    assert_error(me(client, victim.pk), 401, "AUTH0002")
    assert_error(me(client, customer.pk), 401, "AUTH0002")


def test_a_token_of_another_publisher_is_invalid(settings):
    customer = CustomerFactory()
    client = client_for(customer)
    settings.GIFTSHOP_PUBLISHER_ID = "987654321"
    assert_error(me(client, customer.pk), 401, "AUTH0002")


def test_it_answers_an_expired_token_with_auth0003():
    customer = CustomerFactory()
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        client = client_for(customer)
        traveller.shift(timedelta(minutes=14, seconds=59))
        data_of(me(client, customer.pk))
        traveller.shift(timedelta(seconds=2))
        response = me(client, customer.pk)
    assert_error(response, 401, "AUTH0003")


def test_a_token_of_a_deleted_customer_is_refused():
    customer = CustomerFactory()
    client, customer_id = client_for(customer), customer.pk
    customer.delete()
    assert_error(me(client, customer_id), 401, "AUTH0002")


def test_a_token_of_a_deactivated_customer_is_refused():
    customer = CustomerFactory()
    client = client_for(customer)
    Customer.objects.filter(pk=customer.pk).update(is_active=False)
    assert_error(me(client, customer.pk), 401, "AUTH0002")


# --- the envelope ------------------------------------------------------------------------------------------


def test_an_empty_post_body_with_a_json_content_type_is_accepted():
    gift = make_gift()
    client = client_for(CustomerFactory())
    response = client.post(f"/mediastore/gifts/redeem/{gift.code}", content_type="application/json")
    assert data_of(response)["redeemMode"] == "NEW"


def test_an_empty_json_body_is_validated_like_an_empty_object():
    assert_error(APIClient().post("/mediastore/auths", content_type="application/json"), 422, "REQ0001")
    body = assert_error(client_for(CustomerFactory()).post("/mediastore/orders", content_type="application/json"), 422)
    assert body["code"] == "REQ0001" and "offerId" in body["errors"][0]


def test_a_malformed_json_body_is_req0001():
    response = APIClient().post("/mediastore/auths", '{"email": ', content_type="application/json")
    assert_error(response, 422, "REQ0001")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/mediastore/nope"),
        ("get", "/mediastore/"),
        ("post", "/mediastore/customers/1/nope"),
        ("get", "/mediastore/gifts/not-a-number"),
        ("delete", "/mediastore/orders/abc"),
    ],
)
def test_an_unknown_storefront_path_is_404_in_the_envelope(method, path):
    client = client_for(CustomerFactory())
    assert_error(getattr(client, method)(path), 404)
    assert_error(getattr(APIClient(), method)(path), 404)


def test_a_method_a_storefront_path_does_not_have_is_405_in_the_envelope():
    assert_error(APIClient().get("/mediastore/auths"), 405)
    assert_error(client_for(CustomerFactory()).delete("/mediastore/orders"), 405)


# --- the customer ------------------------------------------------------------------------------------------


def test_a_customer_reads_their_own_record():
    customer = CustomerFactory(email="me@example.com", first_name="Ada", last_name="Lovelace", country="GB")
    data = data_of(me(client_for(customer), customer.pk))
    assert {k: data[k] for k in ("id", "email", "firstName", "lastName", "country", "locale")} == {
        "id": customer.pk,
        "email": "me@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "country": "GB",
        "locale": "en_US",
    }
    assert data["regDate"] == int(customer.date_joined.timestamp())
    assert {"currency", "timeZone"} <= set(data)


@pytest.mark.parametrize("other_id", ["other", "999999", "abc", "0"])
def test_a_customer_cannot_read_or_change_anyone_else(other_id):
    customer, other = CustomerFactory(), CustomerFactory(first_name="Other")
    target = other.pk if other_id == "other" else other_id
    client = client_for(customer)
    assert_error(me(client, target), 404)
    assert_error(client.patch(f"/mediastore/customers/{target}", {"firstName": "Hacked"}, format="json"), 404)
    other.refresh_from_db()
    assert other.first_name == "Other"


def test_a_customer_updates_names_locale_and_time_zone():
    customer = CustomerFactory(email="me@example.com")
    response = client_for(customer).patch(
        f"/mediastore/customers/{customer.pk}",
        {"firstName": "Grace", "lastName": "Hopper", "locale": "fr_FR", "timeZone": "Europe/Paris"},
        format="json",
    )
    data = data_of(response)
    assert (data["firstName"], data["lastName"], data["locale"], data["timeZone"]) == (
        "Grace",
        "Hopper",
        "fr_FR",
        "Europe/Paris",
    )
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name, customer.locale, customer.time_zone) == (
        "Grace",
        "Hopper",
        "fr_FR",
        "Europe/Paris",
    )


def test_a_customer_patch_cannot_change_the_email():
    customer = CustomerFactory(email="me@example.com")
    client_for(customer).patch(f"/mediastore/customers/{customer.pk}", {"email": "new@example.com"}, format="json")
    customer.refresh_from_db()
    assert customer.email == "me@example.com"


@pytest.mark.parametrize(
    "change",
    [
        {"timeZone": "Mars/Olympus_Mons"},
        {"timeZone": "europe/paris"},
        {"firstName": "Line\r\nBcc: x@example.com"},
        {"country": "usa"},
        {"locale": "x" * 11},
    ],
)
def test_an_invalid_customer_change_is_422_and_changes_nothing(change):
    customer = CustomerFactory(first_name="Casey", time_zone="Europe/Berlin")
    response = client_for(customer).patch(f"/mediastore/customers/{customer.pk}", change, format="json")
    assert_error(response, 422)
    customer.refresh_from_db()
    assert (customer.first_name, customer.time_zone, customer.country) == ("Casey", "Europe/Berlin", "")
