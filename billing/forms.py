import secrets
import zoneinfo
from datetime import time, timedelta

from django import forms
from django.utils import timezone

from accounts.models import SiteSettings
from giftshop.timezones import local_to_utc

UI_NOTE_LIMIT = 150
# A delivery date without a time means 09:00 in the chosen time zone (the recipient's, ideally).
DEFAULT_DELIVERY_TIME = time(9)
ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


def new_checkout_key():
    return secrets.token_urlsafe(24)


class CheckoutForm(forms.Form):
    """Checkout for an offer, for oneself or as a gift. Field errors are tied to their inputs in the template."""

    checkout_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    email = forms.EmailField(label="Your email", required=False, help_text="We send the receipt here.")
    coupon = forms.CharField(label="Coupon code", required=False, max_length=50)
    card_number = forms.CharField(
        label="Card number",
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
    )
    exp_month = forms.IntegerField(label="Expiry month", required=False, min_value=1, max_value=12)
    exp_year = forms.IntegerField(label="Expiry year", required=False, min_value=2000, max_value=2100)
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
        if self.as_gift:
            clean_gift_details(self, data)
        return data


class NoteField(forms.CharField):
    """A textarea's text with browser line breaks (CRLF) counted as one character, as the note is stored."""

    def to_python(self, value):
        return super().to_python((value or "").replace("\r\n", "\n"))


class GiftDetailsForm(forms.Form):
    """Who receives the gift, when (in the gifter's local time) and with which note."""

    recipient_email = forms.EmailField(label="Recipient's email")
    recipient_email_again = forms.EmailField(label="Recipient's email again")
    send_now = forms.BooleanField(label="Send it now", required=False)
    delivery_date = forms.DateField(
        label="Delivery date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    delivery_time = forms.TimeField(
        label="Delivery time", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=[(z, z) for z in ZONES])
    personal_note = NoteField(
        label="Personal note",
        required=False,
        max_length=UI_NOTE_LIMIT,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": UI_NOTE_LIMIT, "data-counter": "note-counter"}),
    )

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        chosen = customer.time_zone if customer is not None else ""
        self.fields["time_zone"].initial = chosen or SiteSettings.load().time_zone
        if not chosen:  # a guess: the page's script may replace it with the browser's zone
            self.fields["time_zone"].widget.attrs["data-guess"] = "1"


def clean_gift_details(form, data):
    """Shared by checkout and the gift edit form: the emails match; the delivery is now or in the future."""
    if (
        data.get("recipient_email")
        and data.get("recipient_email_again")
        and (data["recipient_email"].lower() != data["recipient_email_again"].lower())
    ):
        form.add_error("recipient_email_again", "The two email addresses are different.")
    if data.get("send_now"):
        data["delivery_at"] = None
        return data
    if not data.get("delivery_date") or "time_zone" not in data:
        if not data.get("delivery_date"):
            form.add_error("delivery_date", "Choose a delivery date, or tick “Send it now”.")
        return data
    clock = data.get("delivery_time") or DEFAULT_DELIVERY_TIME
    when = local_to_utc(data["delivery_date"], clock, data["time_zone"])
    if when < timezone.now() - timedelta(minutes=1):
        form.add_error("delivery_date", "This time has passed: choose a later one, or tick “Send it now”.")
    data["delivery_at"] = when
    return data
