import secrets

from django import forms
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from gifts.forms import GiftDetailsForm, clean_gift_details
from gifts.models import DeliveryMethod
from gifts.selectors import designs_on_offer
from giftshop.i18n import language_of


def new_checkout_key():
    return secrets.token_urlsafe(24)


# A shopper's words for the card fields' checks (Django's say "Ensure this value is less than or equal to 12").
MONTH_ERRORS = {
    "invalid": _("Enter the expiry month as a number, e.g. 07."),
    "min_value": _("Enter the expiry month as a number from 1 to 12."),
    "max_value": _("Enter the expiry month as a number from 1 to 12."),
}
YEAR_ERRORS = {
    "invalid": _("Enter the expiry year in four digits, e.g. 2029."),
    "min_value": _("Enter the expiry year in four digits, e.g. 2029."),
    "max_value": _("Enter the expiry year in four digits, e.g. 2029."),
}


class CheckoutForm(forms.Form):
    """Checkout for an offer, for oneself or as a gift. Field errors are tied to their inputs in the template."""

    checkout_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    email = forms.EmailField(
        label=_("Your email"),
        required=False,
        help_text=_("We send the receipt here."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    coupon = forms.CharField(label=_("Coupon code"), required=False, max_length=50)
    card_number = forms.CharField(
        label=_("Card number"),
        required=False,
        max_length=30,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number"}),
    )
    exp_month = forms.IntegerField(
        label=_("Expiry month"),
        required=False,
        min_value=1,
        max_value=12,
        error_messages=MONTH_ERRORS,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        label=_("Expiry year"),
        required=False,
        min_value=2000,
        max_value=2100,
        error_messages=YEAR_ERRORS,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )
    cvc = forms.CharField(
        label=_("Security code"),
        required=False,
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc"}),
    )
    saved_card = forms.ChoiceField(label=_("Pay with"), required=False)
    delivery_method = forms.ChoiceField(
        label=_("How the gift reaches them"),
        required=False,  # a form without it (an older page) emails the gift, as before
        choices=[
            (DeliveryMethod.EMAIL, _("Email it to them")),
            (DeliveryMethod.HANDOVER, _("Send it to me to give in person")),
        ],
        initial=DeliveryMethod.EMAIL,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("Choose how the gift reaches them: by email, or from you in person.")},
    )
    design = forms.ChoiceField(
        label=_("Design"),
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": _("This design is no longer on offer: choose another one.")},
    )
    gift_language = forms.ChoiceField(
        label=_("Language of the gift"),
        required=False,  # a form without it (an older page): the page's language
        choices=settings.LANGUAGES,  # each language named in itself ("Deutsch"), as the switcher names them
        help_text=_("The recipient's emails, the redeem page and the certificate are in this language."),
    )
    confirm_own_address = forms.BooleanField(label=_("Yes, this gift is for me"), required=False)

    def __init__(self, *args, customer=None, as_gift=False, browser_card=False, credit_covers=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer, self.as_gift, self.browser_card = customer, as_gift, browser_card
        self.credit_covers = credit_covers  # account credit pays the whole order (issue 16): no card is asked for
        if browser_card:
            # Stripe: the card is given on the next page, to Stripe's Payment Element; this form never sees one.
            for name in [*CARD_FIELDS, "cvc"]:
                del self.fields[name]
            self.fields["save_card"] = forms.BooleanField(
                label=_("Keep this card for renewals and later purchases"),
                required=False,
                help_text=_("Stripe keeps it; you can remove it from your account at any time."),
            )
        if customer is not None:
            del self.fields["email"]
            cards = list(customer.payment_methods.all())
            self.fields["saved_card"].choices = [(str(c.pk), str(c)) for c in cards] + [("", gettext("A new card"))]
            if cards:
                self.fields["saved_card"].initial = str(cards[0].pk)
        else:
            del self.fields["saved_card"]
            self.fields["email"].required = True
        # Handed over in person: no address and no delivery time to ask for (whatever was typed is not kept).
        self.handover = as_gift and self.data.get("delivery_method") == DeliveryMethod.HANDOVER
        if as_gift:
            self.fields.update(GiftDetailsForm(customer=customer).fields)
            self.designs = list(designs_on_offer())
            self.fields["design"].choices = [(d.slug, d.name) for d in self.designs]
            self.fields["design"].initial = self.designs[0].slug if self.designs else ""
            self.fields["gift_language"].initial = language_of(translation.get_language())
            if self.handover:
                for name in ("recipient_email", "recipient_email_again"):
                    self.fields[name].required = False
        else:
            del self.fields["delivery_method"], self.fields["design"], self.fields["gift_language"]
        # Asked only once the gift turns out to be addressed to the buyer (see clean), or when already answered.
        self.asks_own_address = bool(self.data.get("confirm_own_address"))
        if not as_gift:
            del self.fields["confirm_own_address"]
        # In the page's order, which the error summary follows.
        order = ["checkout_key", "email"]
        if as_gift:
            gift_fields = list(GiftDetailsForm.base_fields)
            at = gift_fields.index("recipient_email_again") + 1
            order += [
                "delivery_method",
                *gift_fields[:at],
                "confirm_own_address",
                *gift_fields[at:],
                "design",
                "gift_language",
            ]
        self.order_fields([*order, "coupon", "saved_card"])

    def clean(self):
        data = super().clean()
        card_needed = not self.browser_card and not self.credit_covers
        if card_needed and (self.customer is None or not data.get("saved_card")):
            missing = [name for name in CARD_FIELDS if not data.get(name) and name not in self.errors]
            if len(missing) == len(CARD_FIELDS):
                self.add_error("card_number", gettext("Enter your card details."))
            for name in missing if len(missing) < len(CARD_FIELDS) else ():
                self.add_error(name, CARD_FIELDS[name])
            card_problems(self, data)
        if self.handover:
            data.update(recipient_email="", recipient_email_again="", scheduled_at=None)
            for name in ("recipient_email", "recipient_email_again", "delivery_date", "delivery_time"):
                self.errors.pop(name, None)
        elif self.as_gift:
            clean_gift_details(self, data)
            self._clean_own_address(data)
        return data

    def _clean_own_address(self, data):
        """A gift to the buyer's own address is most likely a slip (the browser filled in their own email): it is
        sent only once they confirm it."""
        own = self.customer.email if self.customer is not None else data.get("email")
        recipient = data.get("recipient_email")
        if own and recipient and own.lower() == recipient.lower() and not data.get("confirm_own_address"):
            self.asks_own_address = True
            self.add_error(
                "recipient_email",
                gettext(
                    "This is your own email address. If the gift is for you, tick “Yes, this gift is for me”; "
                    "if not, enter the recipient's address."
                ),
            )


CARD_FIELDS = {
    "card_number": _("Enter the card number."),
    "exp_month": _("Enter the expiry month."),
    "exp_year": _("Enter the expiry year."),
}


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
        form.add_error("card_number", gettext("This card number is not valid: check it against your card."))
    month, year = data.get("exp_month"), data.get("exp_year")
    today = timezone.localdate()
    if month and year and (year, month) < (today.year, today.month) and "exp_month" not in form.errors:
        form.add_error("exp_month", gettext("This card has expired: use another card."))


class NoEchoTextInput(forms.TextInput):
    """A card number is never written back into the page, not even after an error."""

    def format_value(self, value):
        return None


class CardForm(forms.Form):
    card_number = forms.CharField(
        label=_("Card number"),
        max_length=23,
        widget=NoEchoTextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
        help_text=_("Sandbox test cards only, e.g. 4242 4242 4242 4242."),
    )
    exp_month = forms.IntegerField(
        label=_("Expiry month"),
        min_value=1,
        max_value=12,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        label=_("Expiry year"),
        min_value=2000,
        max_value=2100,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )

    def clean(self):
        data = super().clean()
        card_problems(self, data)
        return data
