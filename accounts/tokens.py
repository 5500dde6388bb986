"""The tokens of the links that prove a mailbox."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator


class AddressConfirmationTokenGenerator(PasswordResetTokenGenerator):
    """Django's signed, expiring token (PASSWORD_RESET_TIMEOUT), for the link that confirms a new account's address:
    void once the address is confirmed or changed."""

    key_salt = "giftshop.accounts.AddressConfirmationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified_at}{timestamp}"


address_confirmation_token = AddressConfirmationTokenGenerator()
