from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import gift_sales
from billing.models import CreditEntry, Dispute, Invoice, InvoiceLine, Order, Payment, StripeEvent
from gifts import admin as gifts_admin
from gifts.models import Gift
from giftshop.admin import ReadOnlyAdmin
from giftshop.money import money


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderPaymentInline(ReadOnlyInline):
    """The order's charges and refunds, as the gateway answered them."""

    model = Payment
    fk_name = "order"
    fields = ["kind", "amount", "currency", "status", "gateway", "reference", "failure_message", "completed_at"]
    readonly_fields = fields


class OrderDisputeInline(ReadOnlyInline):
    """Chargebacks of the order's payment (Stripe's `charge.dispute.*` webhooks)."""

    model = Dispute
    fields = ["stripe_id", "amount", "currency", "reason", "status", "evidence_due_by", "created_at"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    inlines = [OrderPaymentInline, OrderDisputeInline]
    list_display = ["id", "customer", "offer", "total_price", "currency", "buy_as_gift", "status", "created_at"]
    list_filter = ["status", "buy_as_gift", "currency"]
    search_fields = ["=id", "customer__email", "recipient_email"]
    list_select_related = ["customer", "offer"]
    readonly_fields = [f.name for f in Order._meta.fields]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    readonly_fields = ["description", "entity_type", "entity_id", "quantity", "unit_amount", "amount"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "total", "currency", "is_gifted", "term_finalized", "issued_at"]
    list_filter = ["is_gifted", "term_finalized", "currency"]
    search_fields = ["=id", "customer__email"]
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in Invoice._meta.fields]
    inlines = [InvoiceLineInline]
    ordering = ["-issued_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "customer", "amount", "currency", "status", "failure_code", "reference", "created_at"]
    list_filter = ["status", "kind", "gateway"]
    search_fields = ["=id", "customer__email", "reference", "idempotency_key"]
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    """Disputed payments, as Stripe reports them: answer them in Stripe's Dashboard before `evidence_due_by`."""

    list_display = ["stripe_id", "order", "amount", "currency", "reason", "status", "evidence_due_by", "created_at"]
    list_filter = ["status", "reason"]
    search_fields = ["stripe_id", "payment_intent", "=order__id"]
    ordering = ["-created_at"]


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    """Account credit (issue 16): each movement once, as the product made it (given for an unredeemed gift, spent
    on a purchase or renewal, given back with a refund). A customer's balance per currency is the sum."""

    list_display = ["created_at", "customer", "amount", "currency", "reason", "gift", "order", "invoice"]
    list_filter = ["reason", "currency"]
    search_fields = ["customer__email", "=gift__id", "=order__id", "=invoice__id", "key"]
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in CreditEntry._meta.fields]
    ordering = ["-created_at", "-id"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """The Stripe webhook events processed (each once)."""

    list_display = ["event_id", "type", "created", "processed_at"]
    list_filter = ["type"]
    search_fields = ["=event_id"]


def _refund_note(gift):
    refund = gift.invoice_id and Payment.objects.filter(kind=Payment.Kind.REFUND, invoice_id=gift.invoice_id).first()
    if not refund:
        return _("there was no payment to refund")
    if refund.status == Payment.Status.SUCCEEDED:
        return _("%(amount)s refunded to the gifter") % {"amount": money(refund.amount, refund.currency)}
    return _("the refund FAILED (%(reason)s); it is pending, for support to retry") % {
        "reason": refund.failure_message or _("gateway error")
    }


# The gifts' admin, with the action that moves money: gifts cannot call billing, so billing registers the admin
# that support uses, in place of the one gifts registered.
admin.site.unregister(Gift)


@admin.register(Gift)
class GiftAdmin(gifts_admin.GiftAdmin):
    actions = gifts_admin.GiftAdmin.actions.copy()
    actions.insert(actions.index("export_csv"), "cancel")

    @admin.action(description=gettext_lazy("Cancel (refund the gifter)"), permissions=["change"])
    def cancel(self, request, queryset):
        if "apply" not in request.POST:
            return self._confirm(
                request,
                queryset,
                action="cancel",
                title=_("Cancel gifts and refund the gifters"),
                explanation=_(
                    "These gifts are cancelled: their codes stop working, a scheduled one is never"
                    " delivered, and what each gifter paid is refunded in full to their card. Each gifter is told by"
                    " email. This cannot be undone."
                ),
                button=_("Yes, cancel and refund"),
            )

        def change(gift):
            gift = gift_sales.gift_cancel(gift_id=gift.pk, actor=gifts_admin.admin_actor(request))
            return _("cancelled; %(refund)s.") % {"refund": _refund_note(gift)}

        # Stored in the admin's history as written, so it stays in English (a record, read in any language).
        self._for_each(request, queryset, change, "Cancelled the gift (refunding the gifter).")
