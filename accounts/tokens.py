"""The tokens of the links that prove a mailbox (and, with it, a request made from the account)."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator


class AddressConfirmationTokenGenerator(PasswordResetTokenGenerator):
    """Django's signed, expiring token (PASSWORD_RESET_TIMEOUT), for the link that confirms a new account's address:
    void once the address is confirmed or changed."""

    key_salt = "giftshop.accounts.AddressConfirmationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified_at}{timestamp}"


address_confirmation_token = AddressConfirmationTokenGenerator()


class ErasureTokenGenerator(PasswordResetTokenGenerator):
    """Django's signed, expiring token (PASSWORD_RESET_TIMEOUT), for the emailed link that confirms a customer's
    request to erase their account: void once the account is erased, or its password or address changes."""

    key_salt = "giftshop.accounts.ErasureTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.password}{user.erased_at}{timestamp}"


erasure_token = ErasureTokenGenerator()
