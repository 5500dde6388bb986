"""Postmark's batch API through emails.backends.PostmarkBatchBackend (issue 14): many messages a request, each
message's own result in the answer deciding its fate, the whole request's 429 pausing every sender. Against a
fake Postmark on loopback speaking `POST /email/batch` as Postmark documents it."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache

from emails.models import Email
from gifts import services as gift_services
from gifts.tests.factories import make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
TOKEN = "test-postmark-token"


class FakeBatchPostmark:
    """Answers `/email/batch` with one result per message: ErrorCode 406 (inactive recipient) for the addresses in
    `inactive`, else accepted; the first `throttle` requests get a 429 for the whole batch."""

    def __init__(self):
        self.batches, self.inactive, self.throttle = [], set(), 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/email/batch" and self.headers["X-Postmark-Server-Token"] == TOKEN
                if fake.throttle:
                    fake.throttle -= 1
                    return self.answer(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, retry_after="0.1")
                fake.batches.append([message["To"] for message in body])
                return self.answer(200, [fake.result(n, message) for n, message in enumerate(body)])

            def answer(self, status, data, retry_after=None):
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        return Handler

    def result(self, n, message):
        if message["To"] in self.inactive:
            return {"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive."}
        return {"ErrorCode": 0, "Message": "OK", "MessageID": f"id-{len(self.batches)}-{n}", "To": message["To"]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def postmark(settings):
    fake = FakeBatchPostmark()
    settings.EMAIL_BACKEND = "emails.backends.PostmarkBatchBackend"
    host, port = fake.server.server_address
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": TOKEN, "POSTMARK_API_URL": f"http://{host}:{port}/"}
    settings.EMAIL_BATCH_SIZE, settings.EMAIL_SEND_CONCURRENCY = 10, 4
    cache.clear()
    yield fake
    fake.close()


def due_gifts(count):
    offer = OfferFactory()
    return [make_gift(offer=offer, recipient_email=f"friend{n}@example.com") for n in range(count)]


def test_emails_go_out_ten_to_a_request_each_with_its_own_message_id(postmark):
    gifts = due_gifts(25)

    assert gift_services.deliver_due_gifts() == 25

    sizes = sorted(len(batch) for batch in postmark.batches)
    assert sizes == [5, 5, 10, 10, 10, 10]  # 25 deliveries in three requests, then the 25 notices in three
    emails = Email.objects.filter(gift__in=gifts, kind__in=[Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_DELIVERED])
    assert set(emails.values_list("status", "attempts")) == {(Email.Status.SENT, 1)}
    ids = list(emails.values_list("provider_message_id", flat=True))
    assert len(set(ids)) == 50 and all(i.startswith("id-") for i in ids)


def test_a_recipient_refused_in_a_batch_fails_alone_and_the_gifter_hears_only_that(postmark):
    gifts = due_gifts(5)
    postmark.inactive = {"friend2@example.com"}

    gift_services.deliver_due_gifts()

    deliveries = Email.objects.filter(gift__in=gifts, kind=Email.Kind.GIFT_DELIVERY)
    refused = deliveries.get(to_email="friend2@example.com")
    assert refused.status == Email.Status.FAILED and "inactive" in refused.last_error
    assert set(deliveries.exclude(pk=refused.pk).values_list("status", flat=True)) == {Email.Status.SENT}
    notices = Email.objects.filter(gift=refused.gift).values_list("kind", flat=True)
    assert set(notices) == {Email.Kind.GIFT_RECEIPT, Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_BOUNCED}


def test_a_throttled_batch_is_sent_again_after_the_pause_and_fails_nothing(postmark):
    gifts = due_gifts(10)
    postmark.throttle = 1

    gift_services.deliver_due_gifts()

    emails = Email.objects.filter(gift__in=gifts, kind__in=[Email.Kind.GIFT_DELIVERY, Email.Kind.GIFT_DELIVERED])
    assert set(emails.values_list("status", "attempts")) == {(Email.Status.SENT, 1)}
    assert sum(len(batch) for batch in postmark.batches) == 20  # each accepted once
