from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from accounts.erasure import customer_erase
from accounts.forms import AdminLoginForm, CustomerAddForm, CustomerChangeForm
from accounts.models import Customer, ErasureRecord, PaymentMethod, Subscription, Transaction
from accounts.views import personal_data_response
from giftshop.admin import ReadOnlyAdmin

# Staff log in under the same attempt limits as customers (accounts.views.admin_login adds the 429).
admin.site.login_form = AdminLoginForm


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    extra = 0
    fields = ["brand", "last4", "exp_month", "exp_year", "is_default", "gateway", "created_at"]
    readonly_fields = ["gateway", "created_at"]


@admin.register(Customer)
class CustomerAdmin(UserAdmin):
    form, add_form = CustomerChangeForm, CustomerAddForm
    actions = ["download_personal_data", "erase_personal_data"]

    @admin.action(description=gettext_lazy("Download the personal data (JSON, one customer)"))
    def download_personal_data(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one customer to download their data."), level="error")
            return None
        return personal_data_response(queryset.get())

    @admin.action(description=gettext_lazy("Erase personal data"), permissions=["change"])
    def erase_personal_data(self, request, queryset):
        """Asks first (as Django's delete does), then erases each customer (accounts/erasure.py) in a transaction
        of its own, and logs it under the customer's pseudonym."""
        if "apply" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "opts": self.opts,
                "customers": queryset.order_by("pk"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media,
            }
            return TemplateResponse(request, "admin/accounts/customer/erase_confirmation.html", context)
        for customer in queryset.order_by("pk"):
            if customer_erase(customer=customer, requested_by=f"admin:{request.user.pk}") is None:
                self.message_user(
                    request, _("Customer %(id)s: erased already.") % {"id": customer.pk}, messages.WARNING
                )
                continue
            customer.refresh_from_db()  # logged under the pseudonym, never the address just erased
            # Stored in the admin's history as written, so it stays in English (a record, read in any language).
            self.log_change(request, customer, "Erased the personal data.")
            self.message_user(
                request, _("Customer %(id)s: personal data erased.") % {"id": customer.pk}, messages.SUCCESS
            )
        return None

    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "country", "is_staff", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "country", ("erased_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["id", "date_joined", "last_login", "email_verified_at", "duplicate_of", "erased_at"]
    inlines = [PaymentMethodInline]
    fieldsets = [
        (None, {"fields": ["id", "email", "password"]}),
        (
            gettext_lazy("Profile"),
            {"fields": ["first_name", "last_name", "time_zone", "locale", "country", "currency"]},
        ),
        (
            gettext_lazy("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (gettext_lazy("Dates"), {"fields": ["last_login", "date_joined", "erased_at"]}),
        (pgettext_lazy("email address", "Address"), {"fields": ["email_verified_at", "duplicate_of"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "brand", "last4", "exp_month", "exp_year", "is_default", "gateway"]
    list_filter = ["gateway", "brand", "is_default"]
    search_fields = ["customer__email", "last4"]
    readonly_fields = ["id", "token", "created_at"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "offer", "status", "term_start", "term_end", "auto_renew", "origin"]
    list_filter = ["status", "origin", "auto_renew", "offer"]
    search_fields = ["id", "customer__email", "offer__title", "offer__short_id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    date_hierarchy = "term_end"
    list_select_related = ["customer", "offer"]
    raw_id_fields = ["customer"]
    ordering = ["-term_start"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    """The ledger: written by payments only; admins read it."""

    list_display = [
        "transaction_id",
        "occurred_at",
        "customer",
        "kind",
        "offer",
        "amount",
        "currency",
        "target_type",
        "target_id",
    ]
    list_filter = ["kind", "target_type", "currency"]
    search_fields = ["customer__email", "target_id", "payment_reference"]
    date_hierarchy = "occurred_at"
    list_select_related = ["customer", "offer"]
    ordering = ["-occurred_at"]


@admin.register(ErasureRecord)
class ErasureRecordAdmin(ReadOnlyAdmin):
    """The audit trail of erasures: read only, written by accounts/erasure.py alone."""

    list_display = ["id", "customer_id", "requested_by", "erased_at"]
    list_filter = ["requested_by"]
    search_fields = ["=customer__id"]
    date_hierarchy = "erased_at"
    ordering = ["-erased_at"]
