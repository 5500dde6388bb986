from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote

from emails import services as outbox
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The preview renders the email now, as the worker would (nothing rendered is stored), and only under DEBUG:
        # a rendered email holds what its recipient may use, the full gift code, the link's token and
        # set-password links, which the admin of a real shop never shows (README "Gift codes"). In the demo the
        # gifts and accounts are made up, and reading the email is how a newcomer follows the journey.
        email = self.get_object(request, unquote(object_id)) if settings.DEBUG else None
        preview = _preview(email) if email is not None else None
        extra_context = {**(extra_context or {}), "preview": preview}
        return super().change_view(request, object_id, form_url, extra_context)


def _preview(email):
    message = outbox.render(email)
    html = next((part.content for part in message.alternatives if part.mimetype == "text/html"), "")
    return {"subject": message.subject, "from_email": message.from_email, "text": message.body, "html": html}
