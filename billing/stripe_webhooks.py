"""Stripe's webhooks at /payments/stripe/webhook/: the signature is verified (stripe.Webhook.construct_event with
STRIPE_WEBHOOK_SECRET), each event is processed once (its id is stored after it was processed, in StripeEvent),
and every handler is safe to run again and in any order, so a duplicate or late event changes nothing. A failure
is answered 500, so Stripe delivers the event again (it retries for three days).

What is read of an event is only which object it names: a PaymentIntent is read again from Stripe's API, so that an
old event delivered late cannot move a payment backwards."""

import contextlib
import logging
from datetime import UTC, datetime

import stripe
from django.db import IntegrityError
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import stripe_payments
from billing.models import StripeEvent
from billing.stripe_gateway import plain

logger = logging.getLogger(__name__)


def _payment_intent(event):
    intent = stripe_payments.gateway().intent_get(event["data"]["object"]["id"])
    stripe_payments.settle(intent)


def _dispute(event):
    stripe_payments.dispute_record(plain(event["data"]["object"]), event_created=event["created"])


HANDLERS = {
    "payment_intent.succeeded": _payment_intent,
    "payment_intent.payment_failed": _payment_intent,
    "charge.dispute.created": _dispute,
    "charge.dispute.updated": _dispute,
    "charge.dispute.closed": _dispute,
}


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if not stripe_payments.enabled():
        return HttpResponse(status=404)
    try:
        event = stripe_payments.gateway().verify_event(request.body, request.headers.get("Stripe-Signature", ""))
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponseBadRequest("Invalid payload or signature.")
    if StripeEvent.objects.filter(event_id=event["id"]).exists():
        return HttpResponse("Already processed.")
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        try:
            handler(event)
        except Exception:
            logger.exception("Stripe event %s (%s) failed; Stripe will deliver it again", event["id"], event["type"])
            return HttpResponse("Failed; deliver it again.", status=500)
    with contextlib.suppress(IntegrityError):  # a duplicate delivered at the same moment: processed twice, harmlessly
        StripeEvent.objects.create(
            event_id=event["id"], type=event["type"], created=datetime.fromtimestamp(event["created"], tz=UTC)
        )
    return HttpResponse("OK")
