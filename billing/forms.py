import secrets

from django import forms
from django.utils import timezone

from gifts.forms import GiftDetailsForm, clean_gift_details


def new_checkout_key():
    return secrets.token_urlsafe(24)


class CheckoutForm(forms.Form):
    """Checkout for an offer, for oneself or as a gift. Field errors are tied to their inputs in the template."""

    checkout_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    email = forms.EmailField(
        label="Your email",
        required=False,
        help_text="We send the receipt here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    coupon = forms.CharField(label="Coupon code", required=False, max_length=50)
    card_number = forms.CharField(
        label="Card number",
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
    )
    exp_month = forms.IntegerField(
        label="Expiry month",
        required=False,
        min_value=1,
        max_value=12,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month"}),
    )
    exp_year = forms.IntegerField(
        label="Expiry year",
        required=False,
        min_value=2000,
        max_value=2100,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year"}),
    )
    cvc = forms.CharField(
        label="Security code",
        required=False,
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc"}),
    )
    saved_card = forms.ChoiceField(label="Pay with", required=False)

    def __init__(self, *args, customer=None, as_gift=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer, self.as_gift = customer, as_gift
        if customer is not None:
            del self.fields["email"]
            cards = list(customer.payment_methods.all())
            self.fields["saved_card"].choices = [(str(c.pk), str(c)) for c in cards] + [("", "A new card")]
            if cards:
                self.fields["saved_card"].initial = str(cards[0].pk)
        else:
            del self.fields["saved_card"]
            self.fields["email"].required = True
        if as_gift:
            self.fields.update(GiftDetailsForm(customer=customer).fields)

    def clean(self):
        data = super().clean()
        if self.customer is None or not data.get("saved_card"):
            for name in ("card_number", "exp_month", "exp_year"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "Enter your card details.")
            card_problems(self, data)
        if self.as_gift:
            clean_gift_details(self, data)
        return data


def luhn_valid(digits):
    """The card number's check digit (ISO/IEC 7812): a mistyped digit or two swapped ones fail it."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(digits)):
        total += digit if position % 2 == 0 else sum(divmod(digit * 2, 10))
    return total % 10 == 0


def card_problems(form, data):
    """A card number that cannot be right, or a card already expired, is refused on the form, before any charge."""
    number = "".join(ch for ch in data.get("card_number") or "" if ch.isdigit())
    if number and "card_number" not in form.errors and (not 12 <= len(number) <= 19 or not luhn_valid(number)):
        form.add_error("card_number", "This card number is not valid: check it against your card.")
    month, year = data.get("exp_month"), data.get("exp_year")
    today = timezone.localdate()
    if month and year and (year, month) < (today.year, today.month) and "exp_month" not in form.errors:
        form.add_error("exp_month", "This card has expired: use another card.")


class NoEchoTextInput(forms.TextInput):
    """A card number is never written back into the page, not even after an error."""

    def format_value(self, value):
        return None


class CardForm(forms.Form):
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=NoEchoTextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
        help_text="Sandbox test cards only, e.g. 4242 4242 4242 4242.",
    )
    exp_month = forms.IntegerField(
        label="Expiry month",
        min_value=1,
        max_value=12,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        label="Expiry year",
        min_value=2000,
        max_value=2100,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )

    def clean(self):
        data = super().clean()
        card_problems(self, data)
        return data
