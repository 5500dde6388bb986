"""Admin of the shared records: the site's settings, merchant API keys, and merchant events with their webhook
endpoints and deliveries."""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from giftshop.models import ApiKey, Event, SiteSettings, WebhookDelivery, WebhookEndpoint
from giftshop.services import api_key_create


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records only the product writes (a ledger, an audit trail): admins read them, never add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "redeem_url", "default_auto_claim", "default_claim_expiry_days", "time_zone"]

    def has_add_permission(self, request):
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: the list is just a door to it.
        return redirect("admin:giftshop_sitesettings_change", SiteSettings.load().pk)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "kind", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["kind"]
    search_fields = ["name", "prefix"]
    fields = ["name", "kind", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        api_key, raw = api_key_create(name=obj.name, kind=obj.kind)
        obj.pk, obj.prefix, obj.key_digest = api_key.pk, api_key.prefix, api_key.key_digest
        messages.warning(
            request, gettext("The new API key is %(key)s — copy it now, it will not be shown again.") % {"key": raw}
        )

    @admin.action(description=gettext_lazy("Revoke the selected keys"))
    def revoke(self, request, queryset):
        queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())

    def has_delete_permission(self, request, obj=None):
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
