"""Gifts for tests: `make_gift` goes through gifts.services.gift_create (timeline row, receipt in the outbox),
as a purchase does; `GiftFactory` writes the row alone, for tests that need hundreds of them or a gift already
in a later state."""

from datetime import timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.models import Gift, GiftStatus
from offers.tests.factories import OfferFactory


class GuestFactory(CustomerFactory):
    """A customer without a password, as a guest checkout or the merchant API creates one (and quick to make:
    there is no password to hash)."""

    password = factory.PostGenerationMethodCall("set_unusable_password")
    email_verified_at = None

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):  # declared after `password`, so it saves its result
        if create:
            obj.save(update_fields=["password"])


def make_gift(*, gifter=None, offer=None, now=None, scheduled_at=None, **fields):
    """A paid gift as the purchase creates it, `scheduled` (for now, unless told otherwise)."""
    now = now or timezone.now()
    return services.gift_create(
        gifter=gifter or GuestFactory(),
        offer=offer or OfferFactory(),
        recipient_email=fields.pop("recipient_email", "friend@example.com"),
        scheduled_at=scheduled_at or now,
        now=now,
        **fields,
    )


class GiftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Gift

    gifter = factory.SubFactory(GuestFactory)
    offer = factory.SubFactory(OfferFactory)
    recipient_email = factory.Sequence(lambda n: f"recipient{n}@example.com")
    scheduled_at = factory.LazyFunction(timezone.now)
    status = GiftStatus.SCHEDULED
    auto_claim = False
    no_expiry = False
    sent_at = factory.LazyAttribute(lambda g: None if g.status == GiftStatus.SCHEDULED else g.scheduled_at)
    claim_expiry_date = factory.LazyAttribute(
        lambda g: None if g.auto_claim or g.no_expiry else g.scheduled_at + timedelta(days=365)
    )

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        gift = model_class(*args, **kwargs)
        gift.assign_code(nonce=kwargs.get("code_nonce"))  # a given nonce gives a known code
        return gift

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        gift = cls._build(model_class, *args, **kwargs)
        gift.save()
        return gift
