from django.contrib import admin

from emails.models import Email


class EmailInline(admin.TabularInline):
    """An object's emails, for the admin page of what they are about (a gift's, say)."""

    model = Email
    extra = 0
    can_delete = False
    fields = ["kind", "to_email", "status", "attempts", "sent_at", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
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
