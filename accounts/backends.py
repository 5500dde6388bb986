"""How people log in: Django's ModelBackend, which finds the account through `Customer.objects.get_by_natural_key`
(an address's account, never a duplicate registration of it)."""

from django.contrib.auth.backends import ModelBackend


class CustomerBackend(ModelBackend):
    """Django's password check, hasher run for unknown addresses included, so a wrong password costs the same
    everywhere. Named in settings so that the email need only be unique among accounts, not among duplicate
    registrations: Django then warns (auth.W004) instead of refusing the non-unique USERNAME_FIELD."""
