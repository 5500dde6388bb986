"""The web pages' forms: they parse and check input for the browser; every rule stays in the services."""

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from accounts.services import customer_password_set, password_link_request
from giftshop import ratelimit
from giftshop.timezones import zone_choices

# The services name fields as the APIs do; the forms name them in Python.
SERVICE_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "recipientEmail": "recipient_email",
    "personalNote": "personal_note",
    "cardNumber": "card_number",
    "password": "password1",
}


def add_service_error(form, error, default_field=None):
    """Shows a ServiceError on the field it names (or on `default_field`, or above the form)."""
    field = SERVICE_FIELDS.get(error.field, error.field) or default_field
    form.add_error(field if field in form.fields else None, error.message)


class LimitedLogin:
    """Puts a Django authentication form under the login attempt limits (giftshop/ratelimit.py): a wrong password
    uses up one of the client's and the address's attempts (or its device's); over a limit the form refuses before
    checking the password."""

    retry_after = None

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is None or not password:
            return super().clean()
        check = super().clean
        try:
            return ratelimit.login_attempt(self.request, email, check, is_guess=_wrong_password)
        except ratelimit.LimitExceeded as limited:
            self.retry_after = limited.retry_after
            raise ValidationError(str(limited), code="too_many_attempts") from None


class LoginForm(LimitedLogin, auth_forms.AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class AdminLoginForm(LimitedLogin, AdminAuthenticationForm):
    """The admin's login, under the same limits as the customers' (staff passwords are worth more to guess)."""


def _wrong_password(error):
    return isinstance(error, ValidationError) and error.code == "invalid_login"


def password_rules():
    """The configured validators' rules as one plain sentence (Django's own help is an HTML list)."""
    return " ".join(password_validators_help_texts())


class RegisterForm(forms.Form):
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    first_name = forms.CharField(label=_("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=150)
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password1"].help_text = password_rules()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", gettext("The two passwords differ."))
        return cleaned


class SetPasswordEmailForm(auth_forms.PasswordResetForm):
    """Django's reset form, also for customers who have no password yet (created by a gift or a guest
    checkout): the emailed link is how they set one."""

    def save(self, *args, **kwargs):
        # Looked up and emailed by a worker: an address with an account must answer as fast as one without (SEC-9).
        password_link_request(email=self.cleaned_data["email"])


class ChoosePasswordForm(auth_forms.SetPasswordForm):
    """Choosing a password through the emailed link: it proves the mailbox, so the address becomes verified."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label, self.fields["new_password1"].help_text = _("Password"), password_rules()
        self.fields["new_password2"].label, self.fields["new_password2"].help_text = _("Password again"), ""

    def save(self, commit=True):
        return customer_password_set(customer=self.user, password=self.cleaned_data["new_password1"], verified=True)


class ChangePasswordForm(auth_forms.PasswordChangeForm):
    """The account's password change: the old password, then the new one twice."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = _("Current password")
        self.fields["new_password1"].label, self.fields["new_password1"].help_text = _("New password"), password_rules()
        self.fields["new_password2"].label, self.fields["new_password2"].help_text = _("New password again"), ""

    def save(self, commit=True):
        return customer_password_set(customer=self.user, password=self.cleaned_data["new_password1"])


class DetailsForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), required=False, max_length=150)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=150)
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        help_text=_("Dates and times on your pages are shown in this zone, and your gifts' edit deadlines follow it."),
    )

    language = forms.ChoiceField(
        label=_("Language"),
        choices=settings.LANGUAGES,
        required=False,  # left out (an older form, a script): the stored language stays
        help_text=_("The site and our emails to you use it, on every device you sign in on."),
    )

    def __init__(self, *args, current_zone="", **kwargs):
        super().__init__(*args, **kwargs)
        # The common zones first, the customer's own among them, so a zone stored before the picker offered canonical
        # names only (say US/Pacific) can still be kept.
        self.fields["time_zone"].choices = [("", _("The site's time zone")), *zone_choices(extra=[current_zone])]


class UniqueAddress:
    """The admin's customer forms: an address belongs to one account (duplicate registrations aside), which the
    model's conditional constraint says but a form that leaves `duplicate_of` out cannot check by itself."""

    def clean_email(self):
        email = Customer.objects.normalize_email(self.cleaned_data.get("email"))
        taken = Customer.objects.owning(email).exclude(pk=self.instance.pk)
        if self.instance.duplicate_of_id is None and taken.exists():
            raise ValidationError(gettext("A customer with this email already exists."), code="unique")
        return email


class CustomerAddForm(UniqueAddress, auth_forms.AdminUserCreationForm):
    pass


class CustomerChangeForm(UniqueAddress, auth_forms.UserChangeForm):
    pass
