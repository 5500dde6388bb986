"""The gift pages' forms, and the gift details checkout asks for: they parse and check input for the browser;
every rule stays in the services."""

from datetime import time, timedelta

from django import forms
from django.utils import timezone

from giftshop.models import SiteSettings
from giftshop.timezones import ZONES, local_to_utc

UI_NOTE_LIMIT = 150
# A delivery date without a time means 09:00 in the chosen time zone (the recipient's, ideally).
DEFAULT_DELIVERY_TIME = time(9)


def clean_recipient_email_twice(form, data):
    """The recipient's address typed twice must be the same both times (case aside): a typo would send the gift
    to a stranger."""
    first, again = data.get("recipient_email"), data.get("recipient_email_again")
    if first and again and first.lower() != again.lower():
        form.add_error("recipient_email_again", "The two email addresses are different.")
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
    """Shared by checkout and the gift edit form: the emails match; the delivery is now or in the future. The
    delivery date and time (in the chosen zone) become the instant `scheduled_at`, None for "Send it now"."""
    clean_recipient_email_twice(form, data)
    if data.get("send_now"):
        data["scheduled_at"] = None
        return data
    if not data.get("delivery_date") or "time_zone" not in data:
        if not data.get("delivery_date"):
            form.add_error("delivery_date", "Choose a delivery date, or tick “Send it now”.")
        return data
    clock = data.get("delivery_time") or DEFAULT_DELIVERY_TIME
    when = local_to_utc(data["delivery_date"], clock, data["time_zone"])
    if when < timezone.now() - timedelta(minutes=1):
        form.add_error("delivery_date", "This time has passed: choose a later one, or tick “Send it now”.")
    data["scheduled_at"] = when
    return data


class GiftEditForm(GiftDetailsForm):
    """Checkout's gift details, with the delivery time read in the gifter's own time zone."""

    def __init__(self, *args, zone_name, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["time_zone"]
        self.zone_name = zone_name
        self.fields["delivery_date"].help_text = f"Date and time are in your time zone, {zone_name}."

    def clean(self):
        data = super().clean()
        data["time_zone"] = self.zone_name
        return clean_gift_details(self, data)


class RecipientForm(forms.Form):
    """A delivered gift's corrected address."""

    recipient_email = forms.EmailField(label="Recipient's email")
    recipient_email_again = forms.EmailField(label="Recipient's email again")

    def clean(self):
        return clean_recipient_email_twice(self, super().clean())
