"""Every gift status change records one event in Chargebee's envelope, the merchant API lists them, and webhook
endpoints receive them by POST from a real HTTP server of the merchant's, retried with backoff until they answer
2xx or two days have passed."""

import base64
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Customer
from accounts.tests.factories import PaymentMethodFactory
from billing import gift_sales
from gifts import services
from gifts.models import Gift, GiftAction, GiftStatus
from gifts.resources import gift_resource
from gifts.tests.factories import GiftFactory, GuestFactory, make_gift
from giftshop import webhooks
from giftshop.models import Event, WebhookDelivery, WebhookEndpoint
from giftshop.services import api_key_create
from offers.tests.factories import OfferFactory

START = datetime(2031, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "whsec-0123456789"


# --- the merchant's side: a real HTTP server on 127.0.0.1 ------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: object  # email.message.Message: case-insensitive lookups, as a web framework gives them
    body: bytes
    answered: int


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        hook = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with hook.lock:
            answered = 500 if len(hook.received) < hook.fail_first else 200
            hook.received.append(Received(self.path, self.headers, body, answered))
        if hook.delay:
            time.sleep(hook.delay)
        self.send_response(answered)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def hook(settings):
    """A merchant endpoint that records every request; it answers 500 to the first `fail_first` requests, then
    200 (a failing endpoint that recovers; `math.inf` keeps it failing). It listens on loopback, which webhooks may
    reach only when a self-hoster allows private targets."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HookHandler)
    server.daemon_threads = True
    server.received, server.lock, server.fail_first, server.delay = [], threading.Lock(), 0, 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/giftshop"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _endpoint(hook, **fields):
    fields = {"username": "hook-user", "password": "hook-pass", "secret": SECRET, **fields}
    return WebhookEndpoint.objects.create(url=hook.url, **fields)


def _sweep_when_due(clock, delivery):
    """Moves the clock to the delivery's next attempt, sweeps, and returns when that was."""
    delivery.refresh_from_db()
    clock.move_to(delivery.next_attempt_at)
    at = timezone.now()
    webhooks.send_due_webhooks()
    delivery.refresh_from_db()
    return at


# --- the merchant API --------------------------------------------------------------------------------------------


@pytest.fixture
def api(client):
    _, raw = api_key_create(name="back office")
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()

    class Api:
        def get(self, path, params=None):
            response = client.get(f"/api/v2/{path}", params or {}, HTTP_AUTHORIZATION=auth)
            assert response.status_code == 200, response.content
            return response.json()

        def post(self, path, params=None, status=200):
            response = client.post(
                f"/api/v2/{path}",
                urlencode(params or {}),
                content_type="application/x-www-form-urlencoded",
                HTTP_AUTHORIZATION=auth,
            )
            assert response.status_code == status, response.content
            return response.json()

    return Api()


def _buy(api, *, scheduled_at, card="tok_visa", status=200):
    gifter, receiver = GuestFactory(), GuestFactory()
    PaymentMethodFactory(customer=gifter, token=card)
    offer = OfferFactory(giftable=True, period="year")
    return api.post(
        "gifts",
        {
            "scheduled_at": int(scheduled_at.timestamp()),
            "gifter[customer_id]": gifter.pk,
            "gifter[signature]": "Gina",
            "gifter[note]": "Enjoy!",
            "gift_receiver[customer_id]": receiver.pk,
            "gift_receiver[email]": receiver.email,
            "gift_receiver[first_name]": "Rita",
            "gift_receiver[last_name]": "Receiver",
            "subscription[plan_id]": offer.long_id,
        },
        status=status,
    )


class EventLog:
    """The events of one gift, one transition at a time."""

    def __init__(self, gift_id):
        self.gift_id, self.seen = int(gift_id), set()

    def the_new_event(self):
        new = list(Event.objects.filter(gift_id=self.gift_id).exclude(pk__in=self.seen))
        assert len(new) == 1, [event.event_type for event in new]
        self.seen.add(new[0].pk)
        return new[0]


def _timeline(gift):
    return [row["status"] for row in gift["gift_timelines"]]


# --- events: one per transition, with the gift as it was -----------------------------------------------------


@pytest.mark.django_db
def test_a_merchant_gift_records_one_event_per_change_holding_the_gift_as_the_api_showed_it(api, clock):
    bought = _buy(api, scheduled_at=START + timedelta(days=10))
    gift_id = bought["gift"]["id"]
    log = EventLog(gift_id)

    scheduled = log.the_new_event()
    assert scheduled.event_type == "gift_scheduled"
    assert scheduled.content["gift"] == bought["gift"]
    assert scheduled.content["gift"]["gift_receiver"]["subscription_id"] == bought["subscription"]["id"]
    assert _timeline(scheduled.content["gift"]) == ["scheduled"]

    clock.shift(timedelta(hours=1))
    updated_body = api.post(
        f"gifts/{gift_id}/update_gift", {"scheduled_at": int((START + timedelta(days=11)).timestamp())}
    )
    updated = log.the_new_event()
    assert updated.event_type == "gift_updated"
    assert updated.content["gift"] == updated_body["gift"]
    assert updated.content["gift"]["scheduled_at"] == int((START + timedelta(days=11)).timestamp())

    clock.move_to(START + timedelta(days=11, minutes=1))
    assert services.deliver_due_gifts(send=False) == 1
    unclaimed = log.the_new_event()
    assert unclaimed.event_type == "gift_unclaimed"
    assert unclaimed.content["gift"] == api.get(f"gifts/{gift_id}")["gift"]
    assert unclaimed.content["gift"]["status"] == "unclaimed"
    assert _timeline(unclaimed.content["gift"]) == ["scheduled", "unclaimed"]

    clock.shift(timedelta(days=2))
    claimed_body = api.post(f"gifts/{gift_id}/claim")
    claimed = log.the_new_event()
    assert claimed.event_type == "gift_claimed"
    assert claimed.content["gift"] == claimed_body["gift"]
    assert claimed.content["gift"]["status"] == "claimed"
    assert _timeline(claimed.content["gift"]) == ["scheduled", "unclaimed", "claimed"]

    versions = [e.content["gift"]["resource_version"] for e in (scheduled, updated, unclaimed, claimed)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert Event.objects.filter(gift_id=gift_id).count() == 4


@pytest.mark.django_db
def test_cancelling_a_merchant_gift_records_one_gift_cancelled_event(api, clock):
    gift_id = _buy(api, scheduled_at=START + timedelta(days=3))["gift"]["id"]
    log = EventLog(gift_id)
    log.the_new_event()
    clock.shift(timedelta(minutes=5))

    body = api.post(f"gifts/{gift_id}/cancel")

    cancelled = log.the_new_event()
    assert cancelled.event_type == "gift_cancelled"
    assert cancelled.content["gift"] == body["gift"]
    assert _timeline(cancelled.content["gift"]) == ["scheduled", "cancelled"]
    assert cancelled.occurred_at == timezone.now()


@pytest.mark.django_db
def test_update_gift_records_a_gift_updated_event_with_the_new_receiver_and_the_comment(api, clock):
    gift_id = _buy(api, scheduled_at=START + timedelta(days=3))["gift"]["id"]
    log = EventLog(gift_id)
    log.the_new_event()

    body = api.post(
        f"gifts/{gift_id}/update_gift", {"gift_receiver[email]": "new@example.com", "comment": "typo in the address"}
    )

    updated = log.the_new_event()
    assert updated.event_type == "gift_updated"
    assert updated.content["gift"] == body["gift"]
    assert updated.content["gift"]["gift_receiver"]["email"] == "new@example.com"
    assert updated.content["comment"] == "typo in the address"
    assert updated.content["gift"]["status"] == "scheduled"


@pytest.mark.django_db
def test_a_storefront_gift_records_scheduled_updated_unclaimed_and_expired_events(api, clock):
    gift = make_gift(scheduled_at=START + timedelta(days=10), claim_expiry_date=START + timedelta(days=40))
    log = EventLog(gift.pk)
    scheduled = log.the_new_event()
    assert scheduled.event_type == "gift_scheduled"
    assert scheduled.content["gift"] == api.get(f"gifts/{gift.pk}")["gift"]

    clock.shift(timedelta(days=1))
    services.gift_update(
        gift_id=gift.pk,
        action=GiftAction.EDIT,
        actor="test",
        names="mediastore",
        recipient_email="other@example.com",
        scheduled_at=START + timedelta(days=12),
        personal_note="Happy birthday",
    )
    updated = log.the_new_event()
    assert updated.event_type == "gift_updated"
    assert updated.content["gift"] == api.get(f"gifts/{gift.pk}")["gift"]
    assert updated.content["gift"]["gift_receiver"]["email"] == "other@example.com"
    assert updated.content["gift"]["gifter"]["note"] == "Happy birthday"
    assert updated.content["gift"]["resource_version"] > scheduled.content["gift"]["resource_version"]

    clock.move_to(START + timedelta(days=12))
    services.deliver_due_gifts(send=False)
    unclaimed = log.the_new_event()
    assert unclaimed.event_type == "gift_unclaimed"
    assert unclaimed.content["gift"] == api.get(f"gifts/{gift.pk}")["gift"]

    clock.move_to(START + timedelta(days=43))  # the claim window moved with the delivery: day 42
    assert services.expire_due_gifts() == 1
    expired = log.the_new_event()
    assert expired.event_type == "gift_expired"
    assert expired.content["gift"] == api.get(f"gifts/{gift.pk}")["gift"]
    assert _timeline(expired.content["gift"]) == ["scheduled", "unclaimed", "expired"]


@pytest.mark.django_db
def test_redeeming_a_code_and_auto_claim_at_delivery_each_record_only_gift_claimed(api, clock):
    redeemed = make_gift()
    services.deliver_due_gifts(send=False)
    log = EventLog(redeemed.pk)
    log.seen.update(Event.objects.filter(gift=redeemed).values_list("pk", flat=True))
    clock.shift(timedelta(hours=1))
    services.gift_redeem(customer=Customer.objects.create_user("redeemer@example.com"), code=redeemed.code)
    claimed = log.the_new_event()
    assert claimed.event_type == "gift_claimed"
    assert claimed.content["gift"] == api.get(f"gifts/{redeemed.pk}")["gift"]

    auto = make_gift(auto_claim=True, scheduled_at=START + timedelta(days=2))
    log = EventLog(auto.pk)
    assert log.the_new_event().event_type == "gift_scheduled"
    clock.move_to(START + timedelta(days=2))
    services.deliver_due_gifts(send=False)
    auto_claimed = log.the_new_event()
    assert auto_claimed.event_type == "gift_claimed"
    assert auto_claimed.content["gift"] == api.get(f"gifts/{auto.pk}")["gift"]
    assert _timeline(auto_claimed.content["gift"]) == ["scheduled", "claimed"]


@pytest.mark.django_db
def test_a_rolled_back_transition_records_no_event_and_queues_no_webhook(hook, clock):
    _endpoint(hook)
    gift = make_gift()
    services.deliver_due_gifts(send=False)
    events, deliveries = Event.objects.count(), WebhookDelivery.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        services.gift_claim(gift_id=gift.pk)
        assert Event.objects.filter(gift=gift, event_type="gift_claimed").exists()
        raise RuntimeError("the caller failed after the claim")

    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    assert (Event.objects.count(), WebhookDelivery.objects.count()) == (events, deliveries)


@pytest.mark.django_db
def test_refused_changes_record_no_event(api, clock):
    gift_id = _buy(api, scheduled_at=START + timedelta(days=3))["gift"]["id"]
    api.post(f"gifts/{gift_id}/cancel")
    events = Event.objects.count()

    assert api.post(f"gifts/{gift_id}/cancel", status=409)["api_error_code"] == "invalid_state_for_request"
    assert api.post(f"gifts/{gift_id}/claim", status=409)["api_error_code"] == "invalid_state_for_request"
    api.post(f"gifts/{gift_id}/update_gift", {"comment": "too late"}, status=409)
    declined = _buy(api, scheduled_at=START + timedelta(days=3), card="tok_chargeDeclined", status=400)

    assert declined["api_error_code"] == "payment_processing_failed"
    assert Event.objects.count() == events


# --- events through the merchant API -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_events_api_lists_events_newest_first_in_chargebees_envelope(api, clock):
    gift = make_gift()
    clock.shift(timedelta(minutes=1))
    services.deliver_due_gifts(send=False)
    clock.shift(timedelta(minutes=1))
    gift_sales.gift_cancel(gift_id=gift.pk)

    listed = api.get("events")

    assert "next_offset" not in listed
    assert [entry["event"]["event_type"] for entry in listed["list"]] == [
        "gift_cancelled",
        "gift_unclaimed",
        "gift_scheduled",
    ]
    cancelled = listed["list"][0]["event"]
    event = Event.objects.get(event_type="gift_cancelled")
    assert cancelled == {
        "id": f"ev_{event.pk}",
        "occurred_at": int((START + timedelta(minutes=2)).timestamp()),
        "source": "api",
        "object": "event",
        "api_version": "v2",
        "event_type": "gift_cancelled",
        "content": {"gift": api.get(f"gifts/{gift.pk}")["gift"]},
    }
    assert api.get(f"events/ev_{event.pk}") == {"event": cancelled}


@pytest.mark.django_db
def test_the_events_api_filters_by_event_type(api, clock):
    for _ in range(3):
        make_gift()
    services.deliver_due_gifts(send=False)

    unclaimed = api.get("events", {"event_type[is]": "gift_unclaimed"})["list"]
    assert len(unclaimed) == 3 and {e["event"]["event_type"] for e in unclaimed} == {"gift_unclaimed"}
    both = api.get("events", {"event_type[in]": "[gift_scheduled,gift_unclaimed]", "limit": 100})["list"]
    assert len(both) == 6
    assert api.get("events", {"event_type[is_not]": "gift_unclaimed"})["list"][0]["event"]["event_type"] == (
        "gift_scheduled"
    )
    assert api.get("events", {"event_type[is]": "gift_claimed"}) == {"list": []}


@pytest.mark.django_db
def test_the_events_api_pages_through_every_event_once(api, clock):
    for _ in range(5):
        make_gift()
    expected = [f"ev_{pk}" for pk in Event.objects.order_by("-pk").values_list("pk", flat=True)]

    seen, params = [], {"limit": 2}
    while True:
        page = api.get("events", params)
        assert len(page["list"]) <= 2
        seen += [entry["event"]["id"] for entry in page["list"]]
        if "next_offset" not in page:
            break
        params = {"limit": 2, "offset": page["next_offset"]}

    assert seen == expected


@pytest.mark.django_db
def test_the_events_api_answers_404_for_an_unknown_event(client):
    _, raw = api_key_create(name="reader")
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    for event_id in ("ev_999999", "ev_abc", "nothing"):
        response = client.get(f"/api/v2/events/{event_id}", HTTP_AUTHORIZATION=auth)
        assert response.status_code == 404
        assert response.json()["api_error_code"] == "resource_not_found"


# --- webhooks ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_endpoint_that_recovers_gets_the_event_once_after_growing_delays(hook, clock, api):
    hook.fail_first = 3
    _endpoint(hook)
    gift = make_gift()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.next_attempt_at == START

    delays = []
    for _ in range(3):
        at = _sweep_when_due(clock, delivery)
        assert delivery.status == WebhookDelivery.Status.PENDING
        delays.append(delivery.next_attempt_at - at)
        webhooks.send_due_webhooks()  # not due yet: nothing is posted
        assert len(hook.received) == delivery.attempts
    assert delays == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]

    _sweep_when_due(clock, delivery)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 4 and delivery.last_status_code == 200 and delivery.last_error == ""
    assert delivery.delivered_at == START + timedelta(minutes=7)
    clock.shift(timedelta(days=1))
    webhooks.send_due_webhooks()
    assert [r.answered for r in hook.received] == [500, 500, 500, 200]
    event = Event.objects.get(gift=gift)
    assert {json.loads(r.body)["id"] for r in hook.received} == {f"ev_{event.pk}"}
    assert json.loads(hook.received[-1].body) == api.get(f"events/ev_{event.pk}")["event"]


@pytest.mark.django_db
def test_a_webhook_post_carries_basic_auth_and_a_signature_of_the_exact_body(hook, clock):
    _endpoint(hook)
    gift = make_gift()

    assert webhooks.send_due_webhooks() == 1

    [request] = hook.received
    event = Event.objects.get(gift=gift)
    assert request.path == "/hooks/giftshop"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hook-user:hook-pass").decode()
    assert request.headers["X-Giftshop-Event-Id"] == f"ev_{event.pk}"
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Giftshop-Signature"], expected)
    assert request.headers["X-Giftshop-Signature"] != hmac.new(b"other", request.body, hashlib.sha256).hexdigest()
    body = json.loads(request.body)
    assert body["object"] == "event" and body["api_version"] == "v2" and body["event_type"] == "gift_scheduled"
    assert body["content"] == event.content and body["content"]["gift"]["id"] == str(gift.pk)


@pytest.mark.django_db
def test_an_endpoint_without_credentials_gets_no_authorization_header(hook, clock):
    _endpoint(hook, username="", password="")
    make_gift()
    webhooks.send_due_webhooks()
    assert "Authorization" not in hook.received[0].headers


@pytest.mark.django_db
def test_a_committed_change_is_posted_right_away(hook, django_capture_on_commit_callbacks):
    _endpoint(hook)
    with django_capture_on_commit_callbacks(execute=True):
        gift = make_gift()
    assert [json.loads(r.body)["content"]["gift"]["id"] for r in hook.received] == [str(gift.pk)]
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED


@pytest.mark.django_db
def test_an_endpoint_that_keeps_failing_is_given_up_after_two_days_and_not_retried(hook, clock):
    hook.fail_first = math.inf
    _endpoint(hook)
    make_gift()
    delivery = WebhookDelivery.objects.get()

    attempts_at = []
    while delivery.status == WebhookDelivery.Status.PENDING:
        assert len(attempts_at) < 100
        attempts_at.append(_sweep_when_due(clock, delivery))

    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == len(attempts_at) == len(hook.received)
    assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
    delays = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert delays == sorted(delays) and max(delays) == timedelta(hours=2)
    # retried for the whole two days: the last try was in the last backoff step of the window
    assert START + webhooks.RETRY_FOR - timedelta(hours=2) <= attempts_at[-1] <= START + webhooks.RETRY_FOR
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.FAILED

    for days in (1, 7):
        clock.move_to(START + timedelta(days=2 + days))
        assert webhooks.send_due_webhooks() == 0
    assert len(hook.received) == len(attempts_at)


@pytest.mark.django_db
def test_an_endpoint_gets_only_the_event_types_it_asked_for(hook, clock):
    everything = _endpoint(hook)
    claims_only = _endpoint(hook, event_types=["gift_claimed"])
    gift = make_gift()

    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [everything.pk]
    services.deliver_due_gifts(send=False)
    services.gift_claim(gift_id=gift.pk)

    by_endpoint = {
        endpoint.pk: sorted(endpoint.deliveries.values_list("event__event_type", flat=True))
        for endpoint in (everything, claims_only)
    }
    assert by_endpoint == {
        everything.pk: ["gift_claimed", "gift_scheduled", "gift_unclaimed"],
        claims_only.pk: ["gift_claimed"],
    }
    assert webhooks.send_due_webhooks() == 4
    assert sorted(json.loads(r.body)["event_type"] for r in hook.received) == [
        "gift_claimed",
        "gift_claimed",
        "gift_scheduled",
        "gift_unclaimed",
    ]


@pytest.mark.django_db
def test_an_inactive_endpoint_gets_nothing(hook, clock):
    _endpoint(hook, active=False)
    make_gift()
    assert not WebhookDelivery.objects.exists()
    assert webhooks.send_due_webhooks() == 0
    assert hook.received == []


@pytest.mark.django_db
def test_an_endpoint_deactivated_while_a_delivery_waits_gets_nothing_more(hook, clock):
    hook.fail_first = 1
    endpoint = _endpoint(hook)
    make_gift()
    delivery = WebhookDelivery.objects.get()
    _sweep_when_due(clock, delivery)
    assert len(hook.received) == 1

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    _sweep_when_due(clock, delivery)

    assert len(hook.received) == 1
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)  # switched back on: the wait resumes
    _sweep_when_due(clock, delivery)
    assert [r.answered for r in hook.received] == [500, 200]
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2


@pytest.mark.django_db
def test_a_delivery_stuck_in_sending_is_given_back_after_stuck_after(hook, clock):
    _endpoint(hook)
    make_gift()
    # A worker claimed it and died before posting.
    WebhookDelivery.objects.update(status=WebhookDelivery.Status.SENDING, sending_started_at=START, attempts=1)

    clock.move_to(START + webhooks.STUCK_AFTER - timedelta(seconds=1))
    assert webhooks.send_due_webhooks() == 0
    assert hook.received == [] and WebhookDelivery.objects.get().status == WebhookDelivery.Status.SENDING

    clock.move_to(START + webhooks.STUCK_AFTER + timedelta(seconds=1))
    assert webhooks.send_due_webhooks() == 1
    assert len(hook.received) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2


@pytest.mark.django_db
def test_an_event_is_delivered_to_an_endpoint_at_most_once_by_constraint(hook):
    endpoint = _endpoint(hook)
    make_gift()
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(event=delivery.event, endpoint=endpoint)
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_post_each_delivery_once(hook):
    hook.delay = 0.02  # slow answers, so the two sweeps overlap
    endpoint = _endpoint(hook)
    gifter, offer, now = GuestFactory(), OfferFactory(), timezone.now()
    gifts = GiftFactory.create_batch(12, gifter=gifter, offer=offer)
    # Rows written directly: in autocommit, recording them through the services would post them at once.
    events = Event.objects.bulk_create(
        [Event(event_type="gift_scheduled", gift=g, occurred_at=now, content={"gift": gift_resource(g)}) for g in gifts]
    )
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=e, endpoint=endpoint, next_attempt_at=now, created_at=now) for e in events]
    )
    start, results = threading.Barrier(2), []

    def sweep():
        try:
            start.wait(timeout=10)
            results.append(webhooks.send_due_webhooks(batch_size=2))
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    posted = sorted(json.loads(r.body)["id"] for r in hook.received)
    assert posted == sorted(f"ev_{e.pk}" for e in events)
    assert sum(results) == 12 and len(results) == 2 and all(results)  # both sweeps took a share
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {(WebhookDelivery.Status.DELIVERED, 1)}
    assert Gift.objects.count() == 12


# --- the admin's delivery log ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_the_delivery_log_and_the_endpoint_form(hook, client):
    client.force_login(Customer.objects.create_superuser("admin@example.com"))
    _endpoint(hook)
    make_gift()

    log = client.get(reverse("admin:giftshop_webhookdelivery_changelist"))
    assert log.status_code == 200 and hook.url in log.content.decode()
    assert (
        client.get(reverse("admin:giftshop_webhookdelivery_changelist"), {"status__exact": "failed"}).status_code == 200
    )
    delivery = WebhookDelivery.objects.get()
    assert client.get(reverse("admin:giftshop_webhookdelivery_change", args=[delivery.pk])).status_code == 200
    assert client.get(reverse("admin:giftshop_webhookendpoint_add")).status_code == 200
    assert client.get(reverse("admin:giftshop_webhookendpoint_changelist")).status_code == 200
    assert client.get(reverse("admin:giftshop_event_changelist")).status_code == 200
