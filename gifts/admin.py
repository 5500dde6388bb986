from django.contrib import admin

from gifts.models import Email, Event, Gift, GiftTimeline, WebhookDelivery, WebhookEndpoint


class GiftTimelineInline(admin.TabularInline):
    model = GiftTimeline
    extra = 0
    can_delete = False
    readonly_fields = ["status", "occurred_at", "actor"]

    def has_add_permission(self, request, obj=None):
        return False


class EmailInline(admin.TabularInline):
    model = Email
    extra = 0
    can_delete = False
    fields = ["kind", "to_email", "status", "attempts", "sent_at", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "masked_code",
        "status",
        "offer",
        "gifter",
        "recipient_email",
        "scheduled_at",
        "sent_at",
        "claimed_at",
        "source",
    ]
    list_filter = ["status", "source", "auto_claim", "no_expiry", "scheduled_at", "sent_at", "claimed_at"]
    search_fields = ["=id", "gifter__email", "recipient_email", "=code_last4"]
    search_help_text = "Gift id, gifter or recipient email, or the last four characters of the code."
    date_hierarchy = "scheduled_at"
    list_select_related = ["offer", "gifter"]
    ordering = ["-created_at"]
    raw_id_fields = ["gifter", "receiver", "order", "invoice", "subscription"]
    inlines = [GiftTimelineInline, EmailInline]
    # The status and everything the state machine owns change only through the services.
    readonly_fields = [
        "id",
        "masked_code",
        "status",
        "source",
        "gifter",
        "offer",
        "order",
        "invoice",
        "receiver",
        "subscription",
        "redeem_mode",
        "sent_at",
        "claimed_at",
        "expired_at",
        "cancelled_at",
        "resource_version",
        "created_at",
        "updated_at",
        "scheduled_at",
        "recipient_email",
        "recipient_first_name",
        "recipient_last_name",
        "personal_note",
        "signature",
        "auto_claim",
        "no_expiry",
        "claim_expiry_date",
    ]
    exclude = ["code_nonce", "code_digest", "code_last4"]

    @admin.display(description="code")
    def masked_code(self, gift):
        return gift.masked_code

    def has_add_permission(self, request):
        return False  # gifts are bought, not typed in

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "to_email", "status", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["key", "to_email", "=gift__id"]
    readonly_fields = [f.name for f in Email._meta.fields]
    list_select_related = ["gift"]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ["event", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "active", "event_types", "created_at"]
    list_filter = ["active"]
    search_fields = ["url"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log."""

    list_display = [
        "id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "endpoint"]
    search_fields = ["=event__id", "endpoint__url"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    list_select_related = ["event", "endpoint"]
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "gift", "occurred_at"]
    list_filter = ["event_type"]
    search_fields = ["=gift__id"]
    readonly_fields = ["event_type", "gift", "occurred_at", "content"]
    ordering = ["-occurred_at"]

    def has_add_permission(self, request):
        return False
