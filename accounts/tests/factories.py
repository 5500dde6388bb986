from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import Customer, PaymentMethod, Subscription
from offers.tests.factories import OfferFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    email_verified_at = factory.LazyFunction(timezone.now)  # a customer as they are once they used an emailed link
    first_name = "Casey"
    last_name = factory.Sequence(lambda n: f"Customer{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethod

    customer = factory.SubFactory(CustomerFactory)
    gateway = "sandbox"
    token = factory.Sequence(lambda n: f"tok_sandbox_{n:08d}")
    brand = "Visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030
    is_default = True


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    offer = factory.SubFactory(OfferFactory)
    status = Subscription.Status.ACTIVE
    term_start = factory.LazyFunction(timezone.now)
    term_end = factory.LazyAttribute(lambda s: s.term_start + timedelta(days=30))
