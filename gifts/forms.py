"""The gift pages' forms, and the gift details checkout asks for: they parse and check input for the browser;
every rule stays in the services."""

from datetime import time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from gifts.models import NAME_MAX_LENGTH
from giftshop.models import SiteSettings
from giftshop.timezones import local_to_utc, zone_choices

UI_NOTE_LIMIT = 150
# A delivery date without a time means 09:00 in the chosen time zone (the recipient's, ideally).
DEFAULT_DELIVERY_TIME = time(9)


def clean_recipient_email_twice(form, data):
    """The recipient's address typed twice must be the same both times (case aside): a typo would send the gift
    to a stranger."""
    first, again = data.get("recipient_email"), data.get("recipient_email_again")
    if first and again and first.lower() != again.lower():
        form.add_error("recipient_email_again", gettext("The two email addresses are different."))
    return data


class NoteField(forms.CharField):
    """A textarea's text with browser line breaks (CRLF) counted as one character, as the note is stored."""

    def to_python(self, value):
        return super().to_python((value or "").replace("\r\n", "\n"))


class GiftDetailsForm(forms.Form):
    """Who receives the gift, when (in the gifter's local time) and with which note."""

    recipient_first_name = forms.CharField(
        label=_("Recipient's first name"),
        required=False,
        max_length=NAME_MAX_LENGTH,
        help_text=_("Their email greets them by it: “Hi Peter”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    recipient_email = forms.EmailField(
        label=_("Recipient's email"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    recipient_email_again = forms.EmailField(
        label=_("Recipient's email again"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    signature = forms.CharField(
        label=pgettext_lazy("gift's sender", "From"),
        required=False,
        max_length=NAME_MAX_LENGTH,
        help_text=_("Your name as the recipient reads it: “Ana sent you a gift”. Empty: your account's name."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    send_now = forms.BooleanField(label=_("Send it now"), required=False)
    delivery_date = forms.DateField(
        label=_("Delivery date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    delivery_time = forms.TimeField(
        label=_("Delivery time"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    # A <select>, not an <input list> with a datalist: it can only post a canonical zone, with or without the
    # page's script, and a browser's select finds an option as its name is typed ("Europe/Ber…").
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=zone_choices)
    personal_note = NoteField(
        label=_("Personal note"),
        required=False,
        max_length=UI_NOTE_LIMIT,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": UI_NOTE_LIMIT, "data-counter": "note-counter"}),
    )

    def __init__(self, *args, customer=None, zone_name="", **kwargs):
        """`zone_name`: the zone already chosen (the gift's, on its edit page); else the customer's, else the
        site's, which the page's script replaces with the browser's zone."""
        super().__init__(*args, **kwargs)
        chosen = zone_name or (customer.time_zone if customer is not None else "")
        site_zone = SiteSettings.load().time_zone
        field = self.fields["time_zone"]
        field.initial = chosen or site_zone
        field.choices = zone_choices([chosen, site_zone])
        if not chosen:  # a guess: the page's script may replace it with the browser's zone
            field.widget.attrs["data-guess"] = "1"


def clean_gift_details(form, data):
    """Shared by checkout and the gift edit form: the emails match; the delivery is now or in the future. The
    delivery date and time (in the chosen zone) become the instant `scheduled_at`, None for "Send it now"."""
    clean_recipient_email_twice(form, data)
    if data.get("send_now"):
        data["scheduled_at"] = None
        return data
    if not data.get("delivery_date") or "time_zone" not in data:
        if not data.get("delivery_date"):
            form.add_error("delivery_date", gettext("Choose a delivery date, or tick “Send it now”."))
        return data
    clock = data.get("delivery_time") or DEFAULT_DELIVERY_TIME
    when = local_to_utc(data["delivery_date"], clock, data["time_zone"])
    if when < timezone.now() - timedelta(minutes=1):
        form.add_error("delivery_date", gettext("This time has passed: choose a later one, or tick “Send it now”."))
    data["scheduled_at"] = when
    return data


class GiftEditForm(GiftDetailsForm):
    """Checkout's gift details, prefilled in the zone the gift's time was chosen in (`zone_name`); a new zone
    reads the date and time typed in it."""

    def __init__(self, data=None, *args, zone_name, **kwargs):
        if data is not None and not data.get("time_zone"):  # a page from before the zone could be changed
            data = data.copy()
            data["time_zone"] = zone_name
        super().__init__(data, *args, zone_name=zone_name, **kwargs)

    def clean(self):
        return clean_gift_details(self, super().clean())


class RecipientForm(forms.Form):
    """A delivered gift's corrected address."""

    recipient_email = forms.EmailField(label=_("Recipient's email"))
    recipient_email_again = forms.EmailField(label=_("Recipient's email again"))

    def clean(self):
        return clean_recipient_email_twice(self, super().clean())


class SendElsewhereForm(forms.Form):
    """A declined gift's new recipient (issue 16): the address twice, a first name, and the note, which starts as the
    one written for the first recipient."""

    recipient_email = forms.EmailField(label=_("Their email"), widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    recipient_email_again = forms.EmailField(
        label=_("Their email again"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    recipient_first_name = forms.CharField(
        label=_("Their first name"),
        required=False,
        max_length=NAME_MAX_LENGTH,
        help_text=_("Their email greets them by it: “Hi Peter”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    personal_note = NoteField(
        label=_("Personal note"),
        required=False,
        max_length=UI_NOTE_LIMIT,
        help_text=_("The note you wrote for the first recipient: change it for this one, or leave it empty for none."),
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": UI_NOTE_LIMIT}),
    )

    def clean(self):
        return clean_recipient_email_twice(self, super().clean())
