from django.contrib import admin

from billing.models import Invoice, InvoiceLine, Order, Payment


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
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
