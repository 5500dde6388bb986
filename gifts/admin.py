from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from emails.admin import EmailInline
from emails.models import Email
from gifts import codes, design_admin, funnel, group_codes, reports, services  # noqa: F401 - design_admin registers
from gifts.models import BulkList, Gift, GiftTimeline, GroupCode, gift_fields_clean
from giftshop.errors import ServiceError
from offers.models import Offer


class GiftTimelineInline(admin.TabularInline):
    model = GiftTimeline
    extra = 0
    can_delete = False
    readonly_fields = ["status", "occurred_at", "actor"]

    def has_add_permission(self, request, obj=None):
        return False


class UndeliverableFilter(admin.SimpleListFilter):
    """Gifts whose latest delivery email failed or bounced: support's list of recipients to correct. A gift
    leaves it once a resend (to a corrected address) is queued."""

    title = _lazy("undeliverable")
    parameter_name = "undeliverable"

    def lookups(self, request, model_admin):
        return [("yes", _("Delivery email failed or bounced"))]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        latest = (
            Email.objects.filter(gift=OuterRef("pk"), kind=Email.Kind.GIFT_DELIVERY).order_by("-pk").values("status")
        )
        return queryset.alias(last_delivery=Subquery(latest[:1])).filter(
            last_delivery__in=[Email.Status.FAILED, Email.Status.BOUNCED]
        )


class RecipientForm(forms.Form):
    recipient_email = forms.CharField(label=_lazy("New recipient email"), max_length=254, widget=forms.EmailInput)

    def clean_recipient_email(self):
        try:  # the services' own rules (no CR/LF or other header tricks), so the form cannot disagree with them
            return gift_fields_clean(recipient_email=self.cleaned_data["recipient_email"])["recipient_email"]
        except ServiceError as error:
            raise forms.ValidationError(error.message) from None


class FunnelForm(forms.Form):
    """The funnel page's filters (a GET form): how many weeks back, and one offer or all."""

    weeks = forms.IntegerField(
        label=_lazy("Weeks back"), min_value=1, max_value=funnel.MAX_WEEKS, initial=funnel.FUNNEL_WEEKS, required=False
    )
    offer = forms.ModelChoiceField(
        label=_lazy("Offer"),
        queryset=Offer.objects.order_by("title", "pk"),
        required=False,
        empty_label=_lazy("All offers"),
    )

    def report(self):
        """The funnel the filters ask for; an invalid one falls back to its default rather than an error page."""
        data = {}
        if self.is_bound:
            self.is_valid()  # cleaned_data keeps the fields that are valid
            data = self.cleaned_data
        return funnel.funnel_report(weeks=data.get("weeks") or funnel.FUNNEL_WEEKS, offer=data.get("offer"))


def admin_actor(request):
    """Who did it, as a gift's timeline records an admin."""
    return f"admin:{request.user.get_username()}"[:100]  # GiftTimeline.actor's length


# The session key of the gifts whose new codes the one-time page shows: ids and versions, never a code.
REISSUED_SESSION_KEY = "gifts_admin_reissued"


def _csv_response(queryset):
    response = StreamingHttpResponse(reports.gifts_csv_lines(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="gifts-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin):
    # Few enough columns to fit 1280 px beside the filters; the gifter, dates and source are on the change page.
    list_display = ["id", "masked_code", "status", "offer", "recipient_email", "scheduled_at"]
    list_filter = [
        "status",
        UndeliverableFilter,
        "source",
        "auto_claim",
        "no_expiry",
        "scheduled_at",
        "sent_at",
        "claimed_at",
    ]
    search_fields = ["=id", "gifter__email", "recipient_email", "=code_last4"]
    search_help_text = _lazy("Gift id, gifter or recipient email, the whole code, or its last four characters.")
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
        "declined_at",
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
    # billing/admin.py adds "cancel" (it refunds the gifter) to the admin it registers in this one's place.
    actions = ["resend_delivery", "reissue_code", "change_recipient", "export_csv"]

    @admin.display(description=_lazy("code"))
    def masked_code(self, gift):
        return gift.masked_code

    def changelist_view(self, request, extra_context=None):
        # Without the admin's app list beside it (the breadcrumbs lead there), the list and its filters fit 1280 px.
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        """Also finds the gift whose whole code was typed, through the code's keyed hash (no column holds a code)."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            raw = codes.normalize(search_term)
        except codes.InvalidCode:
            return found, may_have_duplicates
        return found | queryset.filter(code_digest=codes.digest(raw)), may_have_duplicates

    def _confirm(self, request, queryset, *, action, title, explanation, button):
        """The page an action that cannot be undone shows first; its form posts the action again with `apply`."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "gifts": queryset.select_related("gifter").order_by("pk"),
            "explanation": explanation,
            "action": action,
            "button": button,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/gifts/gift/confirm_action.html", context)

    def _for_each(self, request, queryset, change, done):
        """Calls `change(gift)` (a service) for each selected gift, one transaction each, and reports every
        outcome. `done`: what the admin log records; the user's message is what `change` returns."""
        for gift in queryset.order_by("pk"):
            try:
                reply = change(gift)
            except ServiceError as refusal:
                message = _("Gift %(id)s: not done. %(reason)s") % {"id": gift.pk, "reason": refusal.message}
                self.message_user(request, message, messages.ERROR)
                continue
            gift.refresh_from_db()  # logged as it is now (a reissued gift under its new masked code)
            self.log_change(request, gift, done)  # never a code: the log is a table like any other
            self.message_user(
                request, _("Gift %(id)s: %(outcome)s") % {"id": gift.pk, "outcome": reply}, messages.SUCCESS
            )

    @admin.action(description=_lazy("Resend the delivery email"), permissions=["change"])
    def resend_delivery(self, request, queryset):
        def change(gift):
            services.gift_resend(gift_id=gift.pk, actor=admin_actor(request))
            return _("the delivery email is sent again to %(email)s, with the same code.") % {
                "email": gift.recipient_email
            }

        self._for_each(request, queryset, change, "Resent the delivery email.")

    @admin.action(description=_lazy("Reissue the code"), permissions=["change"])
    def reissue_code(self, request, queryset):
        if "apply" not in request.POST:
            return self._confirm(
                request,
                queryset,
                action="reissue_code",
                title=_("Reissue the code"),
                explanation=_(
                    "These gifts get a new code and their old code stops working. A gift already delivered"
                    " is emailed to its recipient again, with the new code; each gifter is told by email (without the"
                    " code). The new codes are shown once, on the next page."
                ),
                button=_("Yes, reissue the codes"),
            )
        reissued = []

        def change(gift):
            gift = services.gift_reissue_code(gift_id=gift.pk, actor=admin_actor(request))
            reissued.append([gift.pk, gift.resource_version])
            if gift.status == Gift.Status.UNCLAIMED:
                return _(
                    "the old code no longer works; the new code is shown below, this once. "
                    "It is emailed to the recipient."
                )
            return _("the old code no longer works; the new code is shown below, this once.")

        self._for_each(request, queryset, change, "Reissued the code.")
        if not reissued:
            return None
        # Not in the message list (messages are stored, in the session or a cookie): the one-time page derives each
        # code from the gift when it is shown, and forgets which gifts it was about.
        request.session[REISSUED_SESSION_KEY] = reissued
        return HttpResponseRedirect(reverse("admin:gifts_gift_reissued"))

    def reissued_view(self, request):
        """The new codes of the gifts just reissued, once: the list is taken out of the session as it is read, so
        reloading (or going Back to) the page shows them no more."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        versions = dict(request.session.pop(REISSUED_SESSION_KEY, []))
        gifts = Gift.objects.filter(pk__in=versions).order_by("pk")
        # A gift reissued again meanwhile has another code than the one this page was for: it is left out.
        shown = [gift for gift in gifts if gift.resource_version == versions[gift.pk]]
        response = self._report(request, "admin/gifts/gift/reissued.html", _("New gift codes"), gifts=shown)
        add_never_cache_headers(response)  # no copy in the browser's cache or history either
        return response

    @admin.action(description=_lazy("Change recipient email"), permissions=["change"])
    def change_recipient(self, request, queryset):
        form = RecipientForm(request.POST) if "apply" in request.POST else RecipientForm()
        if form.is_valid():
            email = form.cleaned_data["recipient_email"]

            def change(gift):
                gift = services.gift_change_recipient(
                    gift_id=gift.pk, recipient_email=email, actor=admin_actor(request)
                )
                if gift.status == Gift.Status.UNCLAIMED:
                    return _("the recipient email is now %(email)s. The delivery email is sent again to it.") % {
                        "email": email
                    }
                return _("the recipient email is now %(email)s.") % {"email": email}

            self._for_each(request, queryset, change, f"Changed the recipient email to {email}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change the recipient email"),
            "opts": self.opts,
            "gifts": queryset.order_by("pk"),
            "form": form,
            "action": "change_recipient",
            "button": _("Change the recipient email"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/gifts/gift/change_recipient.html", context)

    @admin.action(description=_lazy("Export selected gifts as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return _csv_response(queryset)

    def get_urls(self):
        # Before the model's own URLs, whose "<object_id>/" pattern would match these too.
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="gifts_gift_dashboard"),
            path(
                "beat-schedule/",
                self.admin_site.admin_view(self.beat_schedule_view),
                name="gifts_gift_beat_schedule",
            ),
            path("export.csv", self.admin_site.admin_view(self.export_view), name="gifts_gift_export"),
            path("funnel/", self.admin_site.admin_view(self.funnel_view), name="gifts_gift_funnel"),
            path("funnel.csv", self.admin_site.admin_view(self.funnel_export_view), name="gifts_gift_funnel_export"),
            path("reissued/", self.admin_site.admin_view(self.reissued_view), name="gifts_gift_reissued"),
            *super().get_urls(),
        ]

    def _require_view_permission(self, request):
        if not self.has_view_permission(request):  # admin_view has only checked that they are staff
            raise PermissionDenied

    def _report(self, request, template, title, **context):
        context = {**self.admin_site.each_context(request), "title": title, "opts": self.opts, **context}
        return TemplateResponse(request, template, context)

    def dashboard_view(self, request):
        self._require_view_permission(request)
        context = {
            "weeks": reports.gift_dashboard(),
            "weeks_shown": reports.DASHBOARD_WEEKS,
            "definitions": reports.DEFINITIONS,
            "guessing": reports.code_guessing(),
        }
        return self._report(request, "admin/gifts/dashboard.html", _("Gifts dashboard"), **context)

    def funnel_view(self, request):
        self._require_view_permission(request)
        form = FunnelForm(request.GET or None)
        context = {
            "form": form,
            "funnel": form.report(),
            "definitions": funnel.FUNNEL_DEFINITIONS,
            "bar_space": funnel.CHART_BAR_SPACE,
            "chart_height": len(funnel.STEPS) * funnel.CHART_ROW,
            "export_query": request.GET.urlencode(),
        }
        # Without the admin's app list beside it (the breadcrumbs lead there), the table fits 1280 px.
        return self._report(
            request, "admin/gifts/funnel.html", _("Gift funnel"), is_nav_sidebar_enabled=False, **context
        )

    def funnel_export_view(self, request):
        """The page's table as CSV, one row per week and offer, with the same filters."""
        self._require_view_permission(request)
        lines = funnel.funnel_csv_lines(FunnelForm(request.GET or None).report())
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="gift-funnel-{timezone.now():%Y%m%d-%H%M%S}.csv"'
        return response

    def beat_schedule_view(self, request):
        self._require_view_permission(request)
        entries = reports.beat_schedule()
        return self._report(request, "admin/gifts/beat_schedule.html", _("Beat schedule"), entries=entries)

    def export_view(self, request):
        self._require_view_permission(request)
        return _csv_response(Gift.objects.all())

    def has_add_permission(self, request):
        return False  # gifts are bought, not typed in

    def has_delete_permission(self, request, obj=None):
        return False


# --- bulk gift lists and group codes (issue 18) ---


@admin.register(BulkList)
class BulkListAdmin(admin.ModelAdmin):
    """Lists are made and paid by their gifter; support reads them (the gifts are in Gifts, one per row)."""

    list_display = ["pk", "gifter", "offer", "status", "gifts_created", "gifts_to_create", "created_at", "paid_at"]
    list_filter = ["status"]
    search_fields = ["gifter__email", "name"]
    readonly_fields = [field.name for field in BulkList._meta.fields]

    def has_add_permission(self, request):
        return False


class GroupCodeForm(forms.ModelForm):
    class Meta:
        model = GroupCode
        fields = ["gifter", "offer", "seats", "expires_at", "personal_note"]


@admin.register(GroupCode)
class GroupCodeAdmin(admin.ModelAdmin):
    """An admin gives a group code (no payment), to a customer who hands it out (they see it in My gifts)."""

    form = GroupCodeForm
    list_display = ["pk", "masked_code", "gifter", "offer", "seats_used", "seats", "expires_at", "created_at"]
    search_fields = ["gifter__email", "code_last4"]
    raw_id_fields = ["gifter"]

    def get_readonly_fields(self, request, obj=None):
        return ["gifter", "offer", "seats", "seats_used", "masked_code", "order", "invoice"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["expires_at", "personal_note"])
            return
        try:
            group = group_codes.group_code_create(
                gifter=obj.gifter,
                offer=obj.offer,
                seats=obj.seats,
                expires_at=obj.expires_at,
                personal_note=obj.personal_note,
            )
        except ServiceError as error:
            raise PermissionDenied(error.message) from None
        obj.__dict__.update(group.__dict__)
        # Never the code in the message list (stored in the session): its gifter reads it in "My gifts".
        messages.success(
            request,
            _("Group code %(code)s for %(seats)s seats: its gifter sees it in My gifts.")
            % {"code": group.masked_code, "seats": group.seats},
        )
