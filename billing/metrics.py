"""Billing's metrics: the renewal engine's charges (billing/renewals.py), charged or declined, so that a payment
gateway refusing every renewal shows as a rising share of declines."""

from prometheus_client import Counter

RENEWALS = Counter(
    "giftshop_renewals",
    "Renewal charges of subscriptions whose term ended, by outcome: charged, declined (retried on a schedule).",
    ["outcome"],
)


def renewal_charged():
    RENEWALS.labels("charged").inc()


def renewal_declined():
    RENEWALS.labels("declined").inc()
