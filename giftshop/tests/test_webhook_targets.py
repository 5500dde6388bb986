"""Webhooks cannot be aimed at us (SSRF): endpoint URLs that resolve to loopback, private, link-local or metadata
addresses are refused when saved and again at delivery, after the name is resolved; redirects are never followed,
so the Basic credentials and the signature never reach another host."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from gifts.tests.factories import make_gift
from giftshop.models import Event, WebhookDelivery, WebhookEndpoint
from giftshop.webhooks import send_due_webhooks

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8000/hook",  # a name: refused for what it resolves to
    "http://10.0.0.5/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://100.64.0.1/hook",  # shared (carrier-grade NAT) space
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "ftp://203.0.114.10/hook",
    "file:///etc/passwd",
]


def endpoint_for(url):
    return WebhookEndpoint(url=url, secret="s")


@pytest.mark.parametrize("url", REFUSED)
def test_an_endpoint_aimed_at_a_non_public_address_is_refused_when_saved(url):
    with pytest.raises(ValidationError) as refused:
        endpoint_for(url).full_clean()
    assert "url" in refused.value.message_dict


def test_a_public_address_is_accepted():
    endpoint_for("https://8.8.8.8/hooks/giftshop").full_clean()


def test_a_self_hoster_may_allow_private_targets(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint_for("http://10.0.0.5/hook").full_clean()


def test_the_admin_form_says_why(admin_client):
    response = admin_client.post(
        "/admin/giftshop/webhookendpoint/add/", {"url": "http://169.254.169.254/", "secret": "s", "event_types": "[]"}
    )
    assert response.status_code == 200
    assert "link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, dict(self.headers)))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    started = []

    def start(status=200, location=None):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.requests, server.status, server.location = [], status, location
        server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def an_event_for(endpoint, gift):
    event = Event.objects.create(event_type="gift_scheduled", gift=gift, occurred_at=endpoint.created_at, content={})
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint)


def test_a_name_that_resolves_to_loopback_by_delivery_time_gets_nothing(servers, monkeypatch):
    gift, hook = make_gift(), servers()
    port = hook.server_address[1]
    endpoint = WebhookEndpoint.objects.create(url=f"http://hooks.merchant.test:{port}/hook", secret="s")
    delivery = an_event_for(endpoint, gift)
    # The merchant's DNS now answers with our loopback address (DNS is the outside world: it is the part faked).
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host == "hooks.merchant.test" else host, *a, **k),
    )

    assert send_due_webhooks() == 0

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.last_error.startswith("refused:")
    assert "loopback" in delivery.last_error
    assert hook.requests == []


def test_a_redirect_is_not_followed_and_counts_as_a_failed_delivery(servers, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the test's servers listen on loopback
    gift, elsewhere = make_gift(), servers()
    hook = servers(status=307, location=elsewhere.url)
    endpoint = WebhookEndpoint.objects.create(url=hook.url, secret="s", username="u", password="p")
    delivery = an_event_for(endpoint, gift)

    assert send_due_webhooks() == 0

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (WebhookDelivery.Status.PENDING, 307)
    assert len(hook.requests) == 1 and hook.requests[0][1]["Host"] == f"127.0.0.1:{hook.server_address[1]}"
    assert elsewhere.requests == []  # neither the credentials nor the signature went on
