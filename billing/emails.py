"""The billing emails: one function per email, building its context when it is sent (an order's receipt, and the
reminder that a gift subscription's term ends, with what its renewal will do). Registered in
settings.EMAIL_KINDS; templates under templates/emails/."""

from django.conf import settings
from django.urls import reverse

from accounts.emails import set_password_url
from accounts.models import Subscription
from billing.models import Payment
from billing.renewals import renewal_subscription
from billing.stripe_payments import authenticate_token
from gifts.selectors import gift_withdrawn


def order_receipt(email):
    order = email.order
    return {
        "order": order,
        "offer": order.offer,
        "invoice": getattr(order, "invoice", None),
        "site_url": settings.SITE_URL,
    }


def term_ending(email):
    """The recipient's reminder that the term of their gift subscription (the one the email's gift started)
    ends soon, with what happens then: the renewal charge, or how to keep access. Read when sent, so it says
    what is true then. The rules are the renewal engine's."""
    subscription = Subscription.objects.select_related("offer", "customer").get(pk=email.gift.subscription_id)
    customer = subscription.customer
    renewable = subscription.status == Subscription.Status.ACTIVE and subscription.renewable
    has_card = customer.payment_methods.filter(is_default=True).exists()
    return {
        "subscription": subscription,
        "offer": subscription.offer,
        "customer": customer,
        "zone": customer.zone().key,
        "renews": renewable and subscription.auto_renew and has_card,
        "renewable": renewable,
        "price": subscription.offer.price,
        "currency": subscription.offer.currency,
        "payment_methods_url": f"{settings.SITE_URL}{reverse('accounts:payment_methods')}",
        "set_password_url": set_password_url(customer),
        "site_url": settings.SITE_URL,
    }


def gift_cancelled(email):
    """The gifter's notice that their gift was cancelled, with the refund of what they paid (no code). Sent just
    after the cancellation commits, usually before the gateway answers the refund, so it names the charge being
    refunded rather than the refund's outcome (a failed refund stays pending for support to retry)."""
    gift = email.gift
    paid = (
        Payment.objects.filter(kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED, invoice_id=gift.invoice_id)
        .order_by("pk")
        .first()
        if gift.invoice_id
        else None
    )
    return {
        "gift": gift,
        "offer": gift.offer,
        "paid": paid,
        "gifts_url": f"{settings.SITE_URL}{reverse('gifts:gifts')}",
        "set_password_url": set_password_url(gift.gifter),
        "site_url": settings.SITE_URL,
        "withdrawn": gift_withdrawn(gift),  # the gifter's own doing (issue 16): no "did you expect this?"
    }


def renewal_authentication(email):
    """The customer's link to authenticate a renewal payment their bank declined for authentication (3-D Secure).
    The email's key names the payment (`renewal-auth:<payment id>`)."""
    payment = Payment.objects.select_related("customer").get(pk=int(email.key.split(":")[1]))
    subscription, _ = renewal_subscription(payment)
    path = reverse("billing:stripe_authenticate", args=[authenticate_token(payment)])
    return {
        "payment": payment,
        "offer": subscription.offer,
        "authenticate_url": f"{settings.SITE_URL}{path}",
        "site_url": settings.SITE_URL,
    }
