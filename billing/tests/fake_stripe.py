"""A fake Stripe API on loopback: a threaded HTTP server (ephemeral port) that speaks as much of Stripe's v1 API as
Giftshop uses, in Stripe's own JSON shapes, so that the official `stripe` library is tested as it runs against
Stripe (pointed here by the STRIPE_API_BASE setting).

- Requests are form-encoded with bracket notation (`metadata[order_id]=5`), as the library sends them; the secret
  key is a Bearer token; the browser's calls (the Stripe.js stand-in) carry the publishable key and the
  PaymentIntent's client secret as Stripe.js does.
- `Idempotency-Key` is honoured as Stripe documents it: the same key with the same request replays the first
  answer (with `Idempotent-Replayed: true`); with other parameters it is a 400 `idempotency_error`.
- Stripe's test PaymentMethods behave as documented (docs.stripe.com/testing): `pm_card_visa` and
  `pm_card_mastercard` succeed, `pm_card_chargeDeclined` and `pm_card_chargeDeclinedInsufficientFunds` decline,
  `pm_card_authenticationRequired` and `pm_card_threeDSecure2Required` need 3-D Secure on every payment (on
  session: `requires_action`; off session: a 402 `authentication_required` decline). Using one makes a new `pm_…`
  that keeps its behaviour, as Stripe does.
- Events are signed exactly as Stripe signs them (`Stripe-Signature: t=…,v1=…`) and posted to `webhook_url`.
- It also serves the Stripe.js stand-in at /v3/ (billing/tests/stripe_js_standin.js) and the 3-D Secure test
  page's outcome (`POST /_test/3ds/<pi>`), which the stand-in calls when the challenge is completed or failed.
"""

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "sk_test_fake_0123456789"
PUBLISHABLE_KEY = "pk_test_fake_0123456789"
WEBHOOK_SECRET = "whsec_fake_0123456789abcdef"
API_VERSION = "2026-10-28.endive"
STANDIN = Path(__file__).with_name("stripe_js_standin.js")

# Stripe's test PaymentMethods: id -> (brand, last4, behaviour)
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242", "success"),
    "pm_card_mastercard": ("mastercard", "4444", "success"),
    "pm_card_chargeDeclined": ("visa", "0002", "card_declined"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", "insufficient_funds"),
    "pm_card_authenticationRequired": ("visa", "3184", "authenticate"),
    "pm_card_threeDSecure2Required": ("visa", "3220", "authenticate"),
}
DECLINES = {
    "card_declined": ("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "authentication_required": (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
    "authentication_failed": (
        "payment_intent_authentication_failure",
        None,
        "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
    ),
}


def new_id(prefix):
    return f"{prefix}_{secrets.token_hex(12)}"


def sign(payload: str, secret=WEBHOOK_SECRET, timestamp=None):
    """The Stripe-Signature header Stripe sends with `payload` (docs.stripe.com/webhooks#verify-manually)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def form_decode(body: str):
    """Stripe's form encoding back into nested dicts and lists: a[b]=1&c[0]=x -> {"a": {"b": "1"}, "c": ["x"]}."""
    result = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        target = result
        for part, following in itertools.pairwise(parts):
            target = target.setdefault(part, [] if following.isdigit() or following == "" else {})
            if isinstance(target, list):
                break
        if isinstance(target, list):
            target.append(value)
        else:
            target[parts[-1]] = value
    return result


class StripeError(Exception):
    def __init__(self, status, error):
        super().__init__(error.get("message"))
        self.status, self.error = status, error


class FakeStripe:
    def __init__(self):
        self.customers, self.payment_methods, self.intents, self.refunds, self.disputes = {}, {}, {}, {}, {}
        self.requests = []  # (method, path, params) of every API request
        self.events = []  # every event sent
        self.webhook_url = None
        self.webhook_copies = 1  # how many times each event is delivered (Stripe may deliver one more than once)
        self.webhook_answers = []  # HTTP statuses the webhook endpoint answered
        self.down = False  # every API request answered 500, as during an outage
        self.on_delivered = None  # called with each event once the webhook has answered it
        self._idempotency = {}
        self._outbox = []
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self):
        host, port = self._server.server_address
        return f"http://{host}:{port}"

    def settings(self):
        """What Django's settings need to use this server (and its Stripe.js stand-in)."""
        return {
            "PAYMENT_GATEWAY": "billing.stripe_gateway.StripeGateway",
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.url,
            "STRIPE_JS_URL": f"{self.url}/v3/",
        }

    # --- objects ---------------------------------------------------------------------------------------------

    def _payment_method(self, pm_id, *, customer=None):
        """A PaymentMethod by id; a test id (pm_card_visa) makes a new one with its behaviour, as Stripe does."""
        if pm_id in TEST_CARDS:
            brand, last4, behaviour = TEST_CARDS[pm_id]
            pm = {
                "id": new_id("pm"),
                "object": "payment_method",
                "type": "card",
                "allow_redisplay": "unspecified",
                "billing_details": {"address": None, "email": None, "name": None, "phone": None},
                "card": {
                    "brand": brand,
                    "last4": last4,
                    "exp_month": 12,
                    "exp_year": 2034,
                    "country": "US",
                    "funding": "credit",
                    "checks": {"cvc_check": "pass"},
                    "three_d_secure_usage": {"supported": True},
                    "wallet": None,
                },
                "created": int(time.time()),
                "customer": customer,
                "livemode": False,
                "metadata": {},
                "_behaviour": behaviour,
            }
            self.payment_methods[pm["id"]] = pm
            return pm
        if pm_id not in self.payment_methods:
            raise StripeError(404, missing("payment_method", pm_id))
        return self.payment_methods[pm_id]

    def customer(self, cus_id):
        return self.customers[cus_id]

    def intent(self, pi_id):
        return self.intents[pi_id]

    def create_customer(self, params):
        customer = {
            "id": new_id("cus"),
            "object": "customer",
            "created": int(time.time()),
            "email": params.get("email"),
            "name": params.get("name"),
            "description": params.get("description"),
            "invoice_settings": {"default_payment_method": None},
            "livemode": False,
            "metadata": params.get("metadata", {}),
        }
        self.customers[customer["id"]] = customer
        return customer

    def delete_customer(self, cus_id):
        """Stripe deletes the Customer and detaches its payment methods; a deleted one is then unknown (404)."""
        if self.customers.pop(cus_id, None) is None:
            raise StripeError(404, missing("customer", cus_id))
        for pm in self.payment_methods.values():
            if pm["customer"] == cus_id:
                pm["customer"] = None
        return {"id": cus_id, "object": "customer", "deleted": True}

    def attach(self, pm_id, customer_id):
        if customer_id not in self.customers:
            raise StripeError(400, invalid(f"No such customer: '{customer_id}'", "customer"))
        pm = self._payment_method(pm_id)
        if pm["customer"] and pm["customer"] != customer_id:
            raise StripeError(400, invalid("This PaymentMethod is attached to another customer.", "payment_method"))
        pm["customer"] = customer_id
        return pm

    def detach(self, pm_id):
        pm = self._payment_method(pm_id)
        pm["customer"] = None
        return pm

    def create_intent(self, params):
        amount = int(params["amount"])
        if amount < 50:
            raise StripeError(400, invalid("Amount must be at least 50 cents.", "amount"))
        customer = params.get("customer")
        if customer and customer not in self.customers:
            raise StripeError(400, invalid(f"No such customer: '{customer}'", "customer"))
        pi_id = new_id("pi")
        intent = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "always"},
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{pi_id}_secret_{secrets.token_hex(12)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": params["currency"].lower(),
            "customer": customer,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "next_action": None,
            "payment_method": None,
            "payment_method_types": ["card"],
            "receipt_email": params.get("receipt_email"),
            "setup_future_usage": params.get("setup_future_usage"),
            "status": "requires_payment_method",
        }
        if "automatic_payment_methods" in params:
            intent["automatic_payment_methods"].update(params["automatic_payment_methods"])
            intent["automatic_payment_methods"]["enabled"] = True
        self.intents[pi_id] = intent
        if params.get("payment_method"):
            intent["payment_method"] = self._payment_method(params["payment_method"])["id"]
            intent["status"] = "requires_confirmation"
        if params.get("confirm") == "true":
            return self.confirm(intent, params, created=True)
        self._event("payment_intent.created", intent)
        return public(intent)

    def confirm(self, intent, params, *, created=False):
        if intent["status"] in ("succeeded", "canceled", "processing"):
            raise StripeError(
                400,
                invalid(
                    f"This PaymentIntent's status is {intent['status']}, so it cannot be confirmed.",
                    None,
                    code="payment_intent_unexpected_state",
                    payment_intent=public(intent),
                ),
            )
        if params.get("payment_method"):
            pm = self._payment_method(params["payment_method"], customer=None)
            intent["payment_method"] = pm["id"]
        if not intent["payment_method"]:
            raise StripeError(400, invalid("You must provide a payment method to confirm.", "payment_method"))
        if params.get("setup_future_usage"):
            intent["setup_future_usage"] = params["setup_future_usage"]
        pm = self.payment_methods[intent["payment_method"]]
        off_session = params.get("off_session") in ("true", "one_off", "recurring")
        behaviour = pm["_behaviour"]
        if created:
            self._event("payment_intent.created", intent)
        if behaviour in DECLINES:
            return self._decline(intent, behaviour)
        if behaviour == "authenticate":
            if off_session:
                return self._decline(intent, "authentication_required")
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": f"{self.url}/_test/3ds/{intent['id']}",
                },
            }
            self._event("payment_intent.requires_action", intent)
            return public(intent)
        return self._succeed(intent)

    def authenticate(self, intent, completed):
        """The 3-D Secure test page's outcome: the cardholder completed (or failed) the challenge."""
        if intent["status"] != "requires_action":
            return public(intent)
        intent["next_action"] = None
        if completed:
            return self._succeed(intent)
        self._decline(intent, "authentication_failed", raise_error=False)
        return public(intent)

    def _succeed(self, intent):
        charge_id = new_id("ch")
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge_id, next_action=None)
        intent["last_payment_error"] = None
        pm = self.payment_methods[intent["payment_method"]]
        if intent["setup_future_usage"] and intent["customer"]:
            pm["customer"] = intent["customer"]  # saved on the customer, as Stripe does
        self._event("charge.succeeded", {"id": charge_id, "object": "charge", "payment_intent": intent["id"]})
        self._event("payment_intent.succeeded", intent)
        return public(intent)

    def _decline(self, intent, reason, *, raise_error=True):
        code, decline_code, message = DECLINES[reason]
        pm = self.payment_methods[intent["payment_method"]]
        error = {
            "type": "card_error" if reason != "authentication_failed" else "invalid_request_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "doc_url": f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}",
            "payment_method": public(pm),
        }
        intent.update(status="requires_payment_method", last_payment_error=error, next_action=None)
        if reason == "authentication_failed":
            intent["payment_method"] = None
        self._event("payment_intent.payment_failed", intent)
        if raise_error:
            raise StripeError(402, {**error, "charge": new_id("ch"), "payment_intent": public(intent)})
        return public(intent)

    def cancel(self, intent):
        if intent["status"] in ("succeeded", "canceled"):
            raise StripeError(
                400,
                invalid(
                    f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                    None,
                    code="payment_intent_unexpected_state",
                ),
            )
        intent.update(status="canceled", canceled_at=int(time.time()), cancellation_reason="requested_by_customer")
        self._event("payment_intent.canceled", intent)
        return public(intent)

    def create_refund(self, params):
        pi_id = params.get("payment_intent")
        intent = self.intents.get(pi_id)
        if intent is None:
            raise StripeError(400, invalid(f"No such payment_intent: '{pi_id}'", "payment_intent"))
        if intent["status"] != "succeeded":
            raise StripeError(400, invalid("This PaymentIntent has no successful charge to refund.", "payment_intent"))
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == pi_id)
        amount = int(params.get("amount", intent["amount"] - refunded))
        if amount > intent["amount"] - refunded:
            raise StripeError(
                400,
                invalid(
                    f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                    f"({intent['amount'] - refunded})",
                    "amount",
                    code="amount_too_large",
                ),
            )
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": new_id("txn"),
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": params.get("metadata", {}),
            "payment_intent": pi_id,
            "reason": params.get("reason"),
            "receipt_number": None,
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        self._event("refund.created", refund)
        return refund

    def dispute(self, pi_id, *, reason="fraudulent"):
        """A cardholder disputes the payment: Stripe makes a Dispute and sends `charge.dispute.created`."""
        intent = self.intents[pi_id]
        dispute = {
            "id": new_id("dp"),
            "object": "dispute",
            "amount": intent["amount"],
            "balance_transactions": [],
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False, "submission_count": 0},
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": pi_id,
            "reason": reason,
            "status": "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        event = self._event("charge.dispute.created", dispute)
        self.flush()
        return event

    # --- events ----------------------------------------------------------------------------------------------

    def _event(self, kind, obj):
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": public(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": new_id("req"), "idempotency_key": None},
            "type": kind,
        }
        self.events.append(event)
        self._outbox.append(event)
        return event

    def flush(self):
        """Delivers the events made since the last flush (after the request that made them let go of the lock:
        the shop's webhook may call the API back), before that request is answered."""
        while True:
            with self._lock:
                if not self._outbox:
                    return
                event = self._outbox.pop(0)
            if self.webhook_url:
                for _ in range(self.webhook_copies):
                    self.deliver(event)

    def event_of(self, kind, obj_id):
        return next(e for e in self.events if e["type"] == kind and e["data"]["object"]["id"] == obj_id)

    def deliver(self, event, *, secret=WEBHOOK_SECRET, signature=None):
        """Posts `event` to the webhook URL as Stripe does; returns the HTTP status it got."""
        payload = json.dumps(event, indent=2)
        request = urllib.request.Request(  # noqa: S310 - loopback, a test URL
            self.webhook_url,
            data=payload.encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature or sign(payload, secret),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback, a test URL
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        self.webhook_answers.append(status)
        if self.on_delivered is not None:
            self.on_delivered(event)
        return status

    # --- the HTTP API -----------------------------------------------------------------------------------------

    def handle(self, method, path, params, headers):
        """(status, body, extra headers) for one API request."""
        with self._lock:
            self.requests.append((method, path, params))
            if self.down:
                return 500, {"error": {"type": "api_error", "message": "An unknown error occurred."}}, {}
            key = headers.get("Idempotency-Key") if method == "POST" else None
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if key and key in self._idempotency:
                seen, status, body = self._idempotency[key]
                if seen != fingerprint:
                    return 400, {"error": idempotency_mismatch(key)}, {}
                return status, body, {"Idempotent-Replayed": "true"}
            try:
                status, body = 200, self._route(method, path, params, headers)
            except StripeError as error:
                status, body = error.status, {"error": error.error}
            if key and status < 500:
                self._idempotency[key] = (fingerprint, status, body)
            return status, body, {}

    def _route(self, method, path, params, headers):
        parts = path.strip("/").split("/")
        browser = params.pop("key", None)
        if browser is not None:
            return self._browser(method, parts, params, browser)
        if headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            raise StripeError(401, {"type": "invalid_request_error", "message": "Invalid API Key provided."})
        match method, parts:
            case "POST", ["v1", "customers"]:
                return self.create_customer(params)
            case "GET", ["v1", "customers", cus_id] if cus_id in self.customers:
                return self.customers[cus_id]
            case "DELETE", ["v1", "customers", cus_id]:
                return self.delete_customer(cus_id)
            case "GET", ["v1", "payment_methods", pm_id]:
                return public(self._payment_method(pm_id))
            case "POST", ["v1", "payment_methods", pm_id, "attach"]:
                return public(self.attach(pm_id, params.get("customer")))
            case "POST", ["v1", "payment_methods", pm_id, "detach"]:
                return public(self.detach(pm_id))
            case "POST", ["v1", "payment_intents"]:
                return self.create_intent(params)
            case "GET", ["v1", "payment_intents", pi_id] if pi_id in self.intents:
                return public(self.intents[pi_id])
            case "POST", ["v1", "payment_intents", pi_id, "confirm"] if pi_id in self.intents:
                return self.confirm(self.intents[pi_id], params)
            case "POST", ["v1", "payment_intents", pi_id, "cancel"] if pi_id in self.intents:
                return self.cancel(self.intents[pi_id])
            case "POST", ["v1", "refunds"]:
                return self.create_refund(params)
        raise StripeError(404, invalid(f"Unrecognized request URL ({method}: {path}).", None))

    def _browser(self, method, parts, params, key):
        """Stripe.js's calls: the publishable key, and the PaymentIntent's client secret as its credential."""
        if key != PUBLISHABLE_KEY:
            raise StripeError(401, {"type": "invalid_request_error", "message": "Invalid API Key provided."})
        pi_id = parts[2] if len(parts) > 2 and parts[:2] in (["v1", "payment_intents"], ["_test", "3ds"]) else None
        intent = self.intents.get(pi_id)
        if intent is None or params.pop("client_secret", None) != intent["client_secret"]:
            raise StripeError(400, invalid("No such payment_intent.", "client_secret"))
        match method, parts:
            case "GET", ["v1", "payment_intents", _]:
                return public(intent)
            case "POST", ["v1", "payment_intents", _, "confirm"]:
                return self.confirm(intent, params)
            case "POST", ["_test", "3ds", _]:
                return self.authenticate(intent, params.get("outcome") == "complete")
        raise StripeError(404, invalid("Unrecognized request URL.", None))


def public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def invalid(message, param, *, code=None, **more):
    return {"type": "invalid_request_error", "message": message, "param": param, "code": code, **more}


def missing(kind, obj_id):
    return invalid(f"No such {kind}: '{obj_id}'", kind, code="resource_missing")


def idempotency_mismatch(key):
    return {
        "type": "idempotency_error",
        "message": f"Keys for idempotent requests can only be used with the same parameters they were first used "
        f"with. Try using a key other than '{key}' if you meant to execute a different request.",
    }


def _handler(stripe):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/v3"):
                data = STANDIN.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(data)
                return
            self._api("GET", dict(parse_qsl(urlsplit(self.path).query)))

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            self._api("POST", form_decode(body))

        def do_DELETE(self):
            self._api("DELETE", {})

        def do_OPTIONS(self):  # the browser's CORS preflight
            self.send_response(204)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _cors(self):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, Authorization")
            self.send_header("Access-Control-Allow-Methods", "GET, POST")

        def _api(self, method, params):
            status, body, extra = stripe.handle(method, urlsplit(self.path).path, params, self.headers)
            stripe.flush()
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", new_id("req"))
            self.send_header("Stripe-Version", API_VERSION)
            self._cors()
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass

    return Handler
