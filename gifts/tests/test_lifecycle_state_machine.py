"""The gift lifecycle as a hypothesis state machine (RELIABILITY.md TOOL-2): purchases, a moving clock, the delivery
and expiry sweeps, redeems, cancellations and replayed merchant claims in any order keep every gift in one
consistent state."""

import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from accounts.tests.factories import CustomerFactory
from billing.gift_sales import gift_cancel
from emails.models import Email
from gifts import services
from gifts.models import TRANSITIONS, Gift, GiftStatus, GiftTimeline
from gifts.tests.factories import GuestFactory, make_gift
from gifts.tests.merchant import MerchantClient
from giftshop.errors import ServiceError
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The size (TOOL-2): 200 examples of up to 50 steps, about 90 s here. LIFECYCLE_EXAMPLES=20 for a quick look.
MACHINE_SETTINGS = settings(
    max_examples=int(os.environ.get("LIFECYCLE_EXAMPLES", 200)),
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class GiftLifecycle(RuleBasedStateMachine):
    gifts = Bundle("gifts")

    def __init__(self):
        super().__init__()
        # Each example runs in its own savepoint, rolled back in teardown, and on its own frozen clock.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.clock = time_machine.travel(START, tick=False)
        self.traveller = self.clock.start()
        self.offer = OfferFactory()
        self.gifter = GuestFactory()
        self.receivers = [CustomerFactory(), CustomerFactory()]
        self.merchant = MerchantClient()
        self.seen = {}  # gift id -> the last status the invariants saw

    def teardown(self):
        self.clock.stop()
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def now(self):
        return datetime.now(tz=UTC)

    def status_of(self, gift_id):
        return Gift.objects.values_list("status", flat=True).get(pk=gift_id)

    @rule(target=gifts, delay_minutes=st.sampled_from([0, 0, 5, 90, 60 * 24]), expiry_hours=st.integers(1, 72))
    def purchase(self, delay_minutes, expiry_hours):
        now = self.now()
        scheduled_at = now + timedelta(minutes=delay_minutes)
        gift = make_gift(
            gifter=self.gifter,
            offer=self.offer,
            now=now,
            scheduled_at=scheduled_at,
            claim_expiry_date=scheduled_at + timedelta(hours=expiry_hours),
        )
        assert gift.status == GiftStatus.SCHEDULED
        return gift.pk

    @rule(minutes=st.sampled_from([1, 10, 60, 60 * 6, 60 * 30]))
    def advance_clock(self, minutes):
        self.traveller.shift(timedelta(minutes=minutes))

    @rule()
    def delivery_sweep(self):
        services.deliver_due_gifts()
        assert not Gift.objects.filter(status=GiftStatus.SCHEDULED, scheduled_at__lte=self.now()).exists()

    @rule()
    def expiry_sweep(self):
        services.expire_due_gifts()
        assert not Gift.objects.filter(
            status=GiftStatus.UNCLAIMED, no_expiry=False, claim_expiry_date__lte=self.now()
        ).exists()

    @rule(gift_id=gifts, receiver=st.integers(0, 1))
    def redeem(self, gift_id, receiver):
        before = self.status_of(gift_id)
        code = Gift.objects.get(pk=gift_id).code
        try:
            services.gift_redeem(customer=self.receivers[receiver], code=code)
        except ServiceError:
            assert self.status_of(gift_id) == before
        else:
            assert before in TRANSITIONS[GiftStatus.CLAIMED]
            assert self.status_of(gift_id) == GiftStatus.CLAIMED

    @rule(gift_id=gifts)
    def cancel(self, gift_id):
        before = self.status_of(gift_id)
        try:
            gift_cancel(gift_id=gift_id)
        except ServiceError:
            assert before not in TRANSITIONS[GiftStatus.CANCELLED]
            assert self.status_of(gift_id) == before
        else:
            assert before in TRANSITIONS[GiftStatus.CANCELLED]
            assert self.status_of(gift_id) == GiftStatus.CANCELLED

    @rule(gift_id=gifts)
    def replay_merchant_claim(self, gift_id):
        key = str(uuid.uuid4())
        first = self.merchant.post(f"gifts/{gift_id}/claim", idempotency_key=key)
        after_first = self.status_of(gift_id)
        assert first.status_code in (200, 409), first.content
        replay = self.merchant.post(f"gifts/{gift_id}/claim", idempotency_key=key)
        assert (replay.status_code, replay.json()) == (first.status_code, first.json())
        assert self.status_of(gift_id) == after_first

    @invariant()
    def each_gift_is_in_one_known_state_and_terminal_states_stay(self):
        for gift_id, status in Gift.objects.values_list("pk", "status"):
            assert status in GiftStatus.values
            previous = self.seen.get(gift_id)
            if previous in (GiftStatus.CLAIMED, GiftStatus.CANCELLED):
                assert status == previous, (gift_id, previous, status)
            self.seen[gift_id] = status

    @invariant()
    def a_subscription_exists_if_and_only_if_claimed(self):
        for status, subscription_id, claimed_at in Gift.objects.values_list("status", "subscription_id", "claimed_at"):
            assert (subscription_id is not None) == (status == GiftStatus.CLAIMED)
            assert (claimed_at is not None) == (status == GiftStatus.CLAIMED)

    @invariant()
    def at_most_one_email_per_gift_and_kind(self):
        counts = Counter(Email.objects.filter(gift__isnull=False).values_list("gift_id", "kind"))
        assert all(count == 1 for count in counts.values()), counts

    @invariant()
    def the_timeline_ends_in_the_gifts_status(self):
        last = {}
        for gift_id, status in GiftTimeline.objects.order_by("occurred_at", "id").values_list("gift_id", "status"):
            last[gift_id] = status
        for gift_id, status in Gift.objects.values_list("pk", "status"):
            assert last.get(gift_id) == status, (gift_id, last.get(gift_id), status)
        firsts = GiftTimeline.objects.order_by("gift_id", "occurred_at", "id").distinct("gift_id")
        assert all(row.status == GiftStatus.SCHEDULED for row in firsts)


def test_no_sequence_of_actions_breaks_the_gift_lifecycle():
    run_state_machine_as_test(GiftLifecycle, settings=MACHINE_SETTINGS)
