"""The renewal engine counts its charges: charged, or declined (and retried later), for the renewals-failing alert."""

import pytest
from prometheus_client import REGISTRY

from accounts.tests.factories import CustomerFactory
from billing.renewals import renew_due_subscriptions
from billing.tests.test_renewals import DECLINING_CARD, START, add_card, redeem_a_gift

pytestmark = pytest.mark.django_db


def renewals(outcome):
    return REGISTRY.get_sample_value("giftshop_renewals_total", {"outcome": outcome}) or 0


@pytest.mark.parametrize(("card", "outcome"), [("4242424242424242", "charged"), (DECLINING_CARD, "declined")])
def test_a_renewal_charge_is_counted_by_its_outcome(time_machine, card, outcome):
    time_machine.move_to(START, tick=False)
    recipient = CustomerFactory(email="friend@example.com")
    subscription = redeem_a_gift(recipient)
    add_card(recipient, card)
    before = {name: renewals(name) for name in ("charged", "declined")}

    time_machine.move_to(subscription.term_end, tick=False)
    assert renew_due_subscriptions() == 1

    after = {name: renewals(name) for name in ("charged", "declined")}
    assert {name: after[name] - before[name] for name in after} == {
        "charged": outcome == "charged",
        "declined": outcome == "declined",
    }
