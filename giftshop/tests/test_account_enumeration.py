"""SEC-9: wherever someone types an email address, the answer does not tell whether the address has an account.
For 50 addresses with an account and 50 without, sent interleaved: the same status, the same headers (but Date and
X-Request-ID, new for each request, and cookies by name only), the same body once the address itself, CSRF tokens
and ids are masked, and median latencies within 10 % of each other.

The machine is shared (other test runs, 2 cores), and 50 samples of a busy machine can put two medians of the same
code 10 % apart. So when a round fails on time, another 50 of each are added and the bound is checked again on all
samples, up to 150 of each: a real difference stays, noise averages out. The bound itself never loosens."""

import gc
import random
import re
import statistics
from datetime import timedelta
from time import perf_counter

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.selectors import customer_for_email
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing.forms import new_checkout_key
from gifts.models import GiftStatus
from gifts.services import deliver_due_gifts
from gifts.tests.factories import make_gift
from giftshop.tests.mediastore import client_for, data_of, publisher_id
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
SAMPLES = 50
ROUNDS = 3
WARM_UP = 5
COUNT = WARM_UP + ROUNDS * SAMPLES
PASSWORD = "a brand new passphrase 42"

MASKS = [
    (re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"'), 'name="csrfmiddlewaretoken" value="TOKEN"'),
    (re.compile(r'name="checkout_key" value="[^"]+"'), 'name="checkout_key" value="KEY"'),
    (re.compile(r'nonce="[^"]+"'), 'nonce="NONCE"'),
    (re.compile(r'"(jwt|refreshToken|customerToken)":"[^"]+"'), r'"\1":"TOKEN"'),
    (re.compile(r"\d+"), "N"),  # ids, times and counts
]


def addresses(kind, count=COUNT):
    """Addresses of one length (`kind` has 8 characters), so that masking them cannot hide a difference in length."""
    assert len(kind) == 8
    return [f"{kind}-{n:04d}@example.com" for n in range(count)]


def mask(text, address):
    text = re.sub(re.escape(address), "ADDRESS", text, flags=re.IGNORECASE)
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


VARY_PER_REQUEST = {"Date", "X-Request-ID"}  # each request's own, whoever asks


def shape(response, address):
    headers = {name: mask(value, address) for name, value in response.headers.items() if name not in VARY_PER_REQUEST}
    return response.status_code, headers, sorted(response.cookies), mask(response.content.decode(), address)


def assert_uniform(send, with_account, without_account):
    """`send(address)` answers alike and as fast for both lists; returns the two medians in ms."""
    for address in [*with_account[:WARM_UP], *without_account[:WARM_UP]]:
        send(address)  # templates, caches and connections warm, outside the measure
    # No collection while measuring: with pairs of requests, the collector's allocation count falls in step with
    # one side, which put 25 % between two medians of the very same request. A few hundred requests' garbage waits.
    gc.collect()
    gc.disable()
    try:
        return _measure(send, list(zip(with_account[WARM_UP:], without_account[WARM_UP:], strict=True)))
    finally:
        gc.enable()


def _measure(send, pairs):
    times, shapes = {True: [], False: []}, {True: set(), False: set()}
    rng = random.Random(9)
    for n, (known, unknown) in enumerate(pairs):
        # Who goes first is drawn (seeded), so neither side always follows the other's work nor falls in step
        # with anything periodic in the process.
        order = [(True, known), (False, unknown)]
        rng.shuffle(order)
        for has_account, address in order:
            start = perf_counter()
            response = send(address)
            times[has_account].append(perf_counter() - start)
            shapes[has_account].add(repr(shape(response, address)))
        if (n + 1) % SAMPLES == 0:
            assert len(shapes[True]) == 1, shapes[True]
            assert shapes[True] == shapes[False]
            known_ms, unknown_ms = (statistics.median(times[key]) * 1000 for key in (True, False))
            print(f"{n + 1} of each: median with an account {known_ms:.2f} ms, without {unknown_ms:.2f} ms")
            if abs(known_ms - unknown_ms) < 0.10 * min(known_ms, unknown_ms):
                return known_ms, unknown_ms
    raise AssertionError(f"median latencies differ by 10 % or more: {known_ms:.2f} ms and {unknown_ms:.2f} ms")


def accounts(kind, count=COUNT):
    """Customers with a password, or without one (made by a gift or a guest checkout)."""
    emails = addresses(f"has-{kind[:4]}", count)
    for email in emails:
        CustomerFactory(email=email) if kind == "password" else customer_for_email(email)
    return emails


@pytest.mark.parametrize("kind", ["password", "none"])
def test_registering_answers_alike_for_a_taken_address(kind):
    client = Client()

    def send(address):
        form = {"email": address, "password1": PASSWORD, "password2": PASSWORD, "first_name": "", "last_name": ""}
        return client.post("/register/", form)

    assert_uniform(send, accounts(kind), addresses("new-prsn"))


@pytest.mark.parametrize("kind", ["password", "none"])
def test_storefront_registration_answers_alike_for_a_taken_address(kind, settings):
    settings.REGISTER_LIMIT = 10**6  # hundreds of registrations from one client: the limit is tested apart
    client = APIClient()

    def send(address):
        body = {"email": address, "password": PASSWORD, "publisherId": publisher_id()}
        return client.post("/mediastore/customers", body, format="json")

    assert_uniform(send, accounts(kind), addresses("new-prsn"))


def test_asking_for_a_password_link_answers_alike_for_an_unknown_address():
    client = Client()
    assert_uniform(
        lambda address: client.post("/password-reset/", {"email": address}),
        accounts("password"),
        addresses("no-accnt"),
    )


@pytest.mark.parametrize("kind", ["password", "none"])
def test_logging_in_answers_alike_for_an_unknown_address(kind, settings):
    settings.LOGIN_ATTEMPT_LIMIT = 10**6  # hundreds of failed logins from one client: the limits are tested apart
    # Django runs the hasher for a missing customer and for one without a password alike (its ModelBackend and
    # verify_password), so a wrong password costs the same everywhere.
    client = Client()
    assert_uniform(
        lambda address: client.post("/login/", {"username": address, "password": PASSWORD}),
        accounts(kind),
        addresses("no-accnt"),
    )


def test_the_storefront_login_answers_alike_for_an_unknown_address(settings):
    settings.LOGIN_ATTEMPT_LIMIT = 10**6
    client = APIClient()

    def send(address):
        body = {"email": address, "password": PASSWORD, "publisherId": publisher_id()}
        return client.post("/mediastore/auths", body, format="json")

    assert_uniform(send, accounts("password"), addresses("no-accnt"))


@pytest.fixture
def gifter():
    customer = CustomerFactory(email="gifter@example.com")
    PaymentMethodFactory(customer=customer)
    return customer


@pytest.fixture
def offer():
    return OfferFactory(giftable=True)


def test_the_gift_checkout_answers_alike_for_a_recipient_with_an_account(gifter, offer):
    client = Client()
    client.force_login(gifter)
    card = gifter.payment_methods.get()
    tomorrow = (timezone.now() + timedelta(days=2)).date().isoformat()

    def send(address):
        form = {
            "checkout_key": new_checkout_key(),
            "recipient_email": address,
            "recipient_email_again": address,
            "delivery_date": tomorrow,
            "delivery_time": "10:00",
            "time_zone": "Europe/Berlin",
            "saved_card": card.pk,
            "action": "pay",
        }
        return client.post(f"/checkout/{offer.long_id}/gift/", form)

    assert_uniform(send, accounts("password"), addresses("no-accnt"))


def test_the_storefront_order_answers_alike_for_a_recipient_with_an_account(gifter, offer):
    client = client_for(gifter)
    order = data_of(client.post("/mediastore/orders", {"offerId": offer.short_id}, format="json"))["order"]

    def send(address):
        change = {"buyAsAGift": True, "deliveryDetails": {"recipientEmail": address, "personalNote": "Enjoy!"}}
        return client.patch(f"/mediastore/orders/{order['id']}", change, format="json")

    assert_uniform(send, accounts("password"), addresses("no-accnt"))


@pytest.fixture
def scheduled_gift(gifter, offer):
    return make_gift(gifter=gifter, offer=offer, scheduled_at=timezone.now() + timedelta(days=10))


def test_editing_a_gift_answers_alike_for_a_recipient_with_an_account(gifter, scheduled_gift):
    client = Client()
    client.force_login(gifter)
    day = (timezone.now() + timedelta(days=9)).astimezone(gifter.zone()).date().isoformat()

    def send(address):
        form = {"recipient_email": address, "recipient_email_again": address, "delivery_date": day}
        return client.post(f"/account/gifts/{scheduled_gift.pk}/edit/", {**form, "delivery_time": "10:00"})

    assert_uniform(send, accounts("password"), addresses("no-accnt"))


def test_the_storefront_gift_edit_answers_alike_for_a_recipient_with_an_account(gifter, scheduled_gift):
    client = client_for(gifter)
    when = int((timezone.now() + timedelta(days=9)).timestamp())

    def send(address):
        details = {"recipientEmail": address, "personalNote": "Enjoy!", "deliveryDate": when}
        return client.patch(f"/mediastore/gifts/{scheduled_gift.pk}", {"deliveryDetails": details}, format="json")

    assert_uniform(send, accounts("password"), addresses("no-accnt"))


def test_correcting_a_delivered_gift_answers_alike_for_a_recipient_with_an_account(gifter, offer):
    gift = make_gift(gifter=gifter, offer=offer)
    deliver_due_gifts()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    client = Client()
    client.force_login(gifter)

    def send(address):
        form = {"recipient_email": address, "recipient_email_again": address}
        return client.post(f"/account/gifts/{gift.pk}/recipient/", form)

    assert_uniform(send, accounts("password"), addresses("no-accnt"))
