from django import forms
from django.contrib import admin
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from offers.models import Addon, Coupon, Offer, QuantityTier, normalize_tags


class TagsField(forms.CharField):
    """Tags typed as a comma-separated list, stored as the canonical sorted list."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return normalize_tags(super().to_python(value) or "")


class OfferForm(forms.ModelForm):
    tags = TagsField(
        required=False, help_text=format_lazy("{} {}", Offer._meta.get_field("tags").help_text, _("Comma-separated."))
    )

    class Meta:
        model = Offer
        fields = [
            "short_id",
            "country",
            "title",
            "description",
            "period",
            "price",
            "currency",
            "active",
            "giftable",
            "tags",
            "same_access_policy",
            "refund_window_days",  # issue 16: the gifter's refund window
            "start_later_days",  # issue 16: how far ahead a recipient may start a new subscription
            "claim_window_end",  # issue 16: what the gifter gets back when a gift is not redeemed in time
            "stack_cap_months",  # issue 16: how far ahead a gift may take its recipient's access
        ]


class QuantityTierInline(admin.TabularInline):
    """Price breaks for bulk gift lists (e.g. 10 gifts or more: 10 % off; 50 or more: 20 % off)."""

    model = QuantityTier
    extra = 0


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    inlines = [QuantityTierInline]
    list_display = ["short_id", "title", "period", "price", "currency", "active", "giftable", "tag_list"]
    list_filter = ["active", "giftable", "period", "currency"]
    search_fields = ["short_id", "title", "description"]
    readonly_fields = ["created_at", "updated_at"]
    ordering = ["title"]

    @admin.display(description=_("tags"))
    def tag_list(self, offer):
        return ", ".join(offer.tags)

    def get_readonly_fields(self, request, obj=None):
        # The id is printed on invoices and used by API clients: fixed once the offer exists.
        return [*self.readonly_fields, "short_id"] if obj else self.readonly_fields


@admin.register(Addon)
class AddonAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "price", "currency", "active"]
    list_filter = ["active", "currency"]
    search_fields = ["code", "name"]
    filter_horizontal = ["offers"]


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "discount_type",
        "percent_off",
        "amount_off",
        "currency",
        "valid_until",
        "redemptions",
        "max_redemptions",
        "active",
    ]
    list_filter = ["active", "discount_type"]
    search_fields = ["code", "name"]
    readonly_fields = ["redemptions"]
    filter_horizontal = ["offers"]
