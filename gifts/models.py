"""The gift and its timeline: the gift state machine's table (TRANSITIONS) and the constraints that tie each status to
its timestamps; next to it, every other rule of one gift: which actions its state allows (ACTIONS, Gift.refusal), when
its claim window has passed, and how its text fields are checked."""

import re
import time as time_module
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, partial

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from gifts import codes
from giftshop import validation
from giftshop.errors import ServiceError
from giftshop.timezones import in_words, in_words_elsewhere, validate_time_zone

# The gifter's personal note, as Cleeng caps it (the web form's own, lower cap is a UI choice).
NOTE_MAX_LENGTH = 255
NAME_MAX_LENGTH = 150
# Who a gift is from, to its recipient, once its gifter's personal data was erased (their name is gone with it).
ERASED_GIFTER_NAME = gettext_lazy("Someone")
# Chargebee caps update_gift's comment, which is kept in the gift_updated event.
COMMENT_MAX_LENGTH = 300


class GiftStatus(models.TextChoices):
    # A context of their own: a language whose adjectives agree with the noun says them of a gift, not a subscription.
    SCHEDULED = "scheduled", pgettext_lazy("gift status", "Scheduled")
    UNCLAIMED = "unclaimed", pgettext_lazy("gift status", "Sent, not redeemed")
    CLAIMED = "claimed", pgettext_lazy("gift status", "Redeemed")
    EXPIRED = "expired", pgettext_lazy("gift status", "Expired")
    CANCELLED = "cancelled", pgettext_lazy("gift status", "Cancelled")
    DECLINED = "declined", pgettext_lazy("gift status", "Declined by the recipient")


# The gift state machine, in one place: the states each state may be entered from.
# Only gifts.services.gift_transition writes a gift's status, through a conditional UPDATE on this table.
TRANSITIONS = {
    # From expired: a storefront gift that expired unredeemed is sent again to an address its gifter corrected.
    # From declined: its gifter sends it to someone else (same code, a fresh claim window; issue 16).
    GiftStatus.UNCLAIMED: {GiftStatus.SCHEDULED, GiftStatus.EXPIRED, GiftStatus.DECLINED},
    GiftStatus.CLAIMED: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED},
    # A declined gift's claim window still ends (and the offer's end-of-window policy applies).
    GiftStatus.EXPIRED: {GiftStatus.UNCLAIMED, GiftStatus.DECLINED},
    # From declined: its gifter withdraws it, refunded, inside the refund window.
    GiftStatus.CANCELLED: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED, GiftStatus.DECLINED},
    # The recipient says "No thanks" (the delivery email's link, the redeem page, the storefront API).
    GiftStatus.DECLINED: {GiftStatus.UNCLAIMED},
}
TERMINAL = {GiftStatus.CLAIMED, GiftStatus.EXPIRED, GiftStatus.CANCELLED}
# Delivered and not ended: the claim window runs (a declined gift's too: its gifter may send it elsewhere until then).
WINDOW_OPEN = {GiftStatus.UNCLAIMED, GiftStatus.DECLINED}


class DeliveryMethod(models.TextChoices):
    """How the code reaches the recipient, chosen at checkout."""

    EMAIL = "email", gettext_lazy("Emailed to the recipient")
    HANDOVER = "handover", gettext_lazy("Given in person by the gifter")


def _expired_in_words():
    """ "expired", as a gift's status reads inside a sentence."""
    return str(GiftStatus.EXPIRED.label).lower()


class GiftAction(models.TextChoices):
    """What can be asked of a gift besides a move in TRANSITIONS; Gift.refusal says why it cannot happen now."""

    EDIT = "edit", "The gifter changes the delivery details"
    UPDATE = "update", "The merchant API's update_gift"
    CLAIM = "claim", "The merchant API's claim"
    CANCEL = "cancel", "A cancel with a refund (merchant API, admin)"
    RESEND = "resend", "Support sends the delivery email again"
    REISSUE_CODE = "reissue_code", "Support gives the gift a new code"
    CHANGE_RECIPIENT = "change_recipient", "A corrected address (support, or the gifter after a bounce)"
    CORRECT_RECIPIENT = "correct_recipient", "The gifter's page for correcting a delivered gift's address"
    WITHDRAW = "withdraw", "The gifter takes an unredeemed gift back, refunded, inside its offer's refund window"
    # The "not redeemed yet" follow-ups (issue 16, gifts/nudges.py).
    GIFTER_RESEND = "gifter_resend", "The gifter emails the recipient the delivery email again"
    HANDOVER = "handover", "The gifter takes an emailed gift to hand over in person"
    # The recipient says "No thanks", and its gifter sends it to someone else (issue 16, gifts.services.gift_decline).
    DECLINE = "decline", "The recipient declines the gift"
    SEND_ELSEWHERE = "send_elsewhere", "The gifter sends a declined gift to someone else"


# The states each action may happen in. The gifter's edit also ends at Gift.edit_cutoff; an expired gift goes to a
# corrected address only from the storefront (a merchant gift's subscription was cancelled when it expired).
ACTIONS = {
    GiftAction.EDIT: {GiftStatus.SCHEDULED},
    GiftAction.UPDATE: {GiftStatus.SCHEDULED},
    GiftAction.CLAIM: {GiftStatus.UNCLAIMED},
    GiftAction.CANCEL: TRANSITIONS[GiftStatus.CANCELLED],
    GiftAction.RESEND: {GiftStatus.UNCLAIMED},
    GiftAction.REISSUE_CODE: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED},
    GiftAction.CHANGE_RECIPIENT: {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED, GiftStatus.EXPIRED},
    GiftAction.CORRECT_RECIPIENT: {GiftStatus.UNCLAIMED, GiftStatus.EXPIRED},
    GiftAction.WITHDRAW: TRANSITIONS[GiftStatus.CANCELLED],  # also only inside Gift.refund_deadline (issue 16)
    GiftAction.GIFTER_RESEND: {GiftStatus.UNCLAIMED},  # an emailed gift; at most once a day (gifts/nudges.py)
    GiftAction.HANDOVER: {GiftStatus.UNCLAIMED},
    GiftAction.DECLINE: {GiftStatus.UNCLAIMED},  # while its claim window is open
    GiftAction.SEND_ELSEWHERE: {GiftStatus.DECLINED},  # while its claim window is open; not a merchant's gift
}
# The merchant API's actions, refused in Chargebee's words: "The gift is <status>; only <states> gifts can be <verb>."
MERCHANT_VERBS = {GiftAction.UPDATE: "updated", GiftAction.CLAIM: "claimed", GiftAction.CANCEL: "cancelled"}
# The error code of a refused action (409); the gifter's edit has its own.
REFUSAL_CODES = {
    GiftAction.EDIT: "gift_not_editable",
    GiftAction.WITHDRAW: "gift_not_withdrawable",
    GiftAction.GIFTER_RESEND: "gift_not_resendable",
    GiftAction.HANDOVER: "gift_not_emailed",
    GiftAction.DECLINE: "gift_not_declinable",
    GiftAction.SEND_ELSEWHERE: "gift_not_sendable",
}


def scheduled_or_now(scheduled_at, now):
    """When a gift asked to be delivered at `scheduled_at` is scheduled: then, or now when that is past or not
    given (a delivery date in the past means "deliver now")."""
    return max(scheduled_at or now, now)


# The gift's text fields: each one's check, and its name in each API, so that an error names the field as the
# caller's client knows it (without an API, as the model does).
GIFT_FIELDS = {
    "recipient_email": (
        validation.email_address,
        {"mediastore": "recipientEmail", "chargebee": "gift_receiver[email]"},
    ),
    "recipient_first_name": (
        partial(validation.single_line, max_length=NAME_MAX_LENGTH),
        {"mediastore": "firstName", "chargebee": "gift_receiver[first_name]"},
    ),
    "recipient_last_name": (
        partial(validation.single_line, max_length=NAME_MAX_LENGTH),
        {"mediastore": "lastName", "chargebee": "gift_receiver[last_name]"},
    ),
    "personal_note": (
        partial(validation.plain_text, max_length=NOTE_MAX_LENGTH),
        {"mediastore": "personalNote", "chargebee": "gifter[note]"},
    ),
    "signature": (
        partial(validation.single_line, max_length=NAME_MAX_LENGTH),
        {"mediastore": "signature", "chargebee": "gifter[signature]"},
    ),
    "comment": (partial(validation.plain_text, max_length=COMMENT_MAX_LENGTH), {"chargebee": "comment"}),
}


def gift_fields_clean(*, names=None, **fields):
    """The given gift text fields (GIFT_FIELDS), checked and normalised; a ServiceError names the field as API
    `names` ("mediastore" or "chargebee") does."""
    cleaned = {}
    for name, value in fields.items():
        check, api_names = GIFT_FIELDS[name]
        cleaned[name] = check(value, field=api_names.get(names, name))
    return cleaned


class GiftQuerySet(models.QuerySet):
    def claim_window_passed(self, now, *, since=None):
        """`unclaimed` (or declined: issue 16) gifts whose claim window has passed by `now` (the expiry sweep's), and
        only since `since` when given (the reminder's "expires within the week", which keeps to `unclaimed` ones). The
        same rule as Gift.claim_window_passed."""
        gifts = self.filter(status__in=WINDOW_OPEN, no_expiry=False, claim_expiry_date__lte=now)
        return gifts if since is None else gifts.filter(claim_expiry_date__gt=since)


class Gift(models.Model):
    Status = GiftStatus

    class Source(models.TextChoices):
        STOREFRONT = "storefront", gettext_lazy("Storefront (MediaStore API / web)")
        MERCHANT = "merchant", gettext_lazy("Merchant API")

    status = models.CharField(max_length=10, choices=GiftStatus.choices, default=GiftStatus.SCHEDULED)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.STOREFRONT)
    # The code is derived from the nonce under a secret key (gifts/codes.py); only its keyed hash is searchable.
    code_nonce = models.CharField(max_length=32, default=codes.new_nonce, editable=False)
    code_digest = models.CharField(max_length=64, unique=True, editable=False)
    code_last4 = models.CharField(max_length=4, editable=False)
    gifter = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="gifts_given")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="gifts")
    order = models.OneToOneField("billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="gift")
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts"
    )
    # Empty only for a gift its gifter hands over in person (delivery_method "handover": no one is emailed; see the
    # constraint gift_email_has_recipient) or once the retention rule removed it from an ended gift.
    recipient_email = models.EmailField(blank=True)
    recipient_first_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    recipient_last_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    receiver = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts_received"
    )
    personal_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    signature = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    scheduled_at = models.DateTimeField(help_text=gettext_lazy("When the recipient is emailed (UTC)."))
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=gettext_lazy("The zone the gifter chose the delivery time in; empty: the gifter's zone."),
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("When the recipient said no thanks.")
    )
    auto_claim = models.BooleanField(default=False)
    no_expiry = models.BooleanField(default=False)
    claim_expiry_date = models.DateTimeField(null=True, blank=True)
    subscription = models.ForeignKey(
        "accounts.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="gifts"
    )
    redeem_mode = models.CharField(max_length=6, blank=True)  # NEW | EXTEND, once claimed
    design = models.ForeignKey(
        "GiftDesign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="gifts",
        help_text=gettext_lazy("Its look."),
    )
    delivery_method = models.CharField(
        max_length=8,
        choices=DeliveryMethod.choices,
        default=DeliveryMethod.EMAIL,
        help_text=gettext_lazy(
            "Handover: the gifter gets the certificate at once and the claim window starts at purchase."
        ),
    )
    language = models.CharField(
        max_length=10,
        blank=True,
        help_text=gettext_lazy(
            "The language of the recipient's emails, redeem page and certificate (issue 17); empty: the site's."
        ),
    )
    recipient_changes = models.PositiveSmallIntegerField(
        default=0,
        help_text=gettext_lazy(
            "Times the gifter changed the recipient's address (limited: RECIPIENT_CHANGES_PER_GIFT)."
        ),
    )
    resource_version = models.BigIntegerField(
        default=0, help_text=gettext_lazy("Milliseconds; bumped by every change.")
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = GiftQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The delivery and expiry sweeps' queries.
            models.Index(fields=["scheduled_at"], condition=Q(status="scheduled"), name="gift_due_delivery_idx"),
            models.Index(
                fields=["claim_expiry_date"],
                condition=Q(status__in=["unclaimed", "declined"]),
                name="gift_due_expiry_idx",
            ),
            # The reminder sweep's "expired unredeemed" notices (gifts/reminders.py).
            models.Index(fields=["expired_at"], condition=Q(status="expired"), name="gift_expired_idx"),
            models.Index(fields=["recipient_email"], name="gift_recipient_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=GiftStatus.values), name="gift_status_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["scheduled", "cancelled"]) | Q(sent_at__isnull=False) | Q(status="claimed"),
                name="gift_delivered_has_sent_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="claimed") | Q(claimed_at__isnull=False, receiver__isnull=False),
                name="gift_claimed_has_receiver",
            ),
            models.CheckConstraint(
                condition=~Q(status="expired") | Q(expired_at__isnull=False), name="gift_expired_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False), name="gift_cancelled_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="declined") | Q(declined_at__isnull=False), name="gift_declined_at"
            ),
            models.CheckConstraint(
                condition=Q(claim_expiry_date__isnull=True) | Q(no_expiry=False, auto_claim=False),
                name="gift_expiry_not_with_auto_claim_or_no_expiry",
            ),
            # An emailed gift that can still be delivered or redeemed has somewhere to go (an ended one's address
            # may be gone: gifts/retention.py); a handed-over gift has no address and is never auto-claimed.
            models.CheckConstraint(
                condition=Q(delivery_method="handover", auto_claim=False)
                | (
                    Q(delivery_method="email")
                    & (~Q(recipient_email="") | Q(status__in=["claimed", "expired", "cancelled"]))
                ),
                name="gift_email_has_recipient",
            ),
        ]

    def __str__(self):
        return f"Gift {self.pk} ({self.masked_code})"

    @property
    def code(self):
        """The redeemable code, for the gifter and the delivery email only."""
        return codes.format_code(codes.code_for_nonce(self.code_nonce))

    @property
    def link_token(self):
        """The redeem link's 128-bit token, for the recipient's emails only; changes with the code."""
        return codes.link_token(self.pk, self.code_nonce)

    @property
    def masked_code(self):
        return f"••••-{self.code_last4}"

    def assign_code(self, nonce=None):
        self.code_nonce = nonce or codes.new_nonce()
        raw = codes.code_for_nonce(self.code_nonce)
        self.code_digest = codes.digest(raw)
        self.code_last4 = raw[-4:]

    @cached_property
    def gifter_zone(self):
        """The gifter's zone (or the site's), read once per gift; a list of one gifter's gifts may set it."""
        return self.gifter.zone()

    def zone(self):
        """The zone the delivery time was chosen in; the gifter's (or the site's) for a gift without one."""
        return zoneinfo.ZoneInfo(self.time_zone) if self.time_zone else self.gifter_zone

    @property
    def recipient_label(self):
        """Who the gift is for, as its gifter's pages name it: the address, or for a gift handed over in person (no
        address) the recipient's first name, if given."""
        if self.recipient_email:
            return self.recipient_email
        return f"{self.recipient_first_name} (in person)" if self.recipient_first_name else "a gift to give in person"

    @property
    def from_name(self):
        """Who the recipient is told the gift is from: the name the gifter signed it with, else their account's
        name (or, without one, address); a gifter whose personal data was erased is no one we can name."""
        if self.signature:
            return self.signature
        return ERASED_GIFTER_NAME if self.gifter.erased_at else self.gifter.get_full_name()

    def delivery_in_words(self, now=None):
        """The delivery (or sending) time and the edit cutoff in the gift's zone, and the delivery in the
        recipient's when their zone is known and its clock differs: {"delivery", "for_recipient", "edit_until"}."""
        zone, when = self.zone().key, self.sent_at or self.scheduled_at
        recipient_zone = self.receiver.time_zone if self.receiver_id else ""
        return {
            "delivery": in_words(when, zone, now),
            "for_recipient": in_words_elsewhere(when, zone, recipient_zone, now),
            "edit_until": in_words(self.edit_cutoff(), zone, now),
        }

    def edit_cutoff(self):
        """Delivery details can change until the end of the day before the delivery day, in the gift's zone."""
        zone = self.zone()
        delivery_day = self.scheduled_at.astimezone(zone).date()
        return datetime.combine(delivery_day, time.min, tzinfo=zone).astimezone(UTC)

    def refund_deadline(self):
        """Until when its gifter may withdraw the gift and be refunded: the offer's refund window from the purchase
        (issue 16); None when the offer has none."""
        days = self.offer.refund_window_days
        return self.created_at + timedelta(days=days) if days else None

    def claim_window_passed(self, now):
        """Delivered, not redeemed, and past its claim expiry date: the code is dead, even before the expiry sweep
        marks the gift expired. The same rule as GiftQuerySet.claim_window_passed."""
        if self.status not in WINDOW_OPEN or self.no_expiry or self.claim_expiry_date is None:
            return False
        return now >= self.claim_expiry_date

    def refusal(self, action, now):
        """Why `action` (GiftAction) cannot happen to this gift now, in the words its callers show; None when it
        can."""
        if action in MERCHANT_VERBS:
            if self.status in ACTIONS[action]:
                return None
            states = " or ".join(status for status in GiftStatus.values if status in ACTIONS[action])
            # The merchant API shows a declined gift as `unclaimed` (Chargebee has no declined: gifts/resources.py).
            status = "declined by its recipient" if self.status == GiftStatus.DECLINED else self.status
            return f"The gift is {status}; only {states} gifts can be {MERCHANT_VERBS[action]}."
        if action == GiftAction.EDIT:
            return self._edit_refusal(now)
        if action == GiftAction.CORRECT_RECIPIENT:
            return self._correction_refusal()
        if action == GiftAction.WITHDRAW:
            return self._withdraw_refusal(now)
        if action in (GiftAction.GIFTER_RESEND, GiftAction.HANDOVER):
            return self._follow_up_refusal(action, now)
        if action == GiftAction.DECLINE:
            return self._decline_refusal(now)
        if action == GiftAction.SEND_ELSEWHERE:
            return self._send_elsewhere_refusal(now)
        return self._support_refusal(action, now)

    def raise_refusal(self, action, now):
        """Raises the refusal of `action` as a ServiceError (409), when there is one."""
        refusal = self.refusal(action, now)
        if refusal:
            raise ServiceError(refusal, code=REFUSAL_CODES.get(action, "invalid_state"), status=409)

    @property
    def _status_in_words(self):
        return self.get_status_display().lower()

    @property
    def _expired_for_good(self):
        # An expired merchant gift is not sent again: its subscription was cancelled when it expired.
        return self.status == GiftStatus.EXPIRED and self.source != Gift.Source.STOREFRONT

    def _edit_refusal(self, now):
        # The gifter's own edit page and PATCH /gifts/{id}.
        if self.status == GiftStatus.CLAIMED:
            return _("The gift has already been redeemed.")
        if self.status not in ACTIONS[GiftAction.EDIT]:
            if self.sent_at:
                return _("The gift has already been sent.")
            return _("The gift is %(status)s.") % {"status": self._status_in_words}
        if now >= self.edit_cutoff():
            return _("Delivery details can be changed until the end of the day before the delivery day.")
        return None

    def _correction_refusal(self):
        # The gifter's page for a delivered gift's address; a refusal under the row lock is CHANGE_RECIPIENT's.
        if self.status in ACTIONS[GiftAction.CORRECT_RECIPIENT] and not self._expired_for_good:
            return None
        if self.status == GiftStatus.EXPIRED:
            return _("This gift expired and its subscription was cancelled, so it cannot be sent again.")
        return _("The gift is %(status)s; its address can no longer be changed.") % {"status": self._status_in_words}

    def _withdraw_refusal(self, now):
        # The gifter's "Withdraw and refund" (web and storefront API), in the gifter's words and time zone.
        if self.status == GiftStatus.CLAIMED:
            return _("The gift has already been redeemed, so it can no longer be withdrawn.")
        if self.status not in ACTIONS[GiftAction.WITHDRAW] or self.claim_window_passed(now):
            status = _expired_in_words() if self.claim_window_passed(now) else self._status_in_words
            return _("The gift is %(status)s, so it can no longer be withdrawn.") % {"status": status}
        if self.source == Gift.Source.MERCHANT:
            return _("This gift was sold through the merchant's own system: ask them to cancel it.")
        if self.order_id is None:
            # A list's (or a group code's) gifts were priced together, by the list's size: support refunds one.
            return _("This gift is one of a list bought together: contact us to withdraw it.")
        deadline = self.refund_deadline()
        if deadline is None:
            return _("Gifts of this offer cannot be withdrawn once bought.")
        if now >= deadline:
            until = in_words(deadline, self.gifter_zone.key, now)
            days = self.offer.refund_window_days
            return ngettext(
                "Gifts can be withdrawn for %(days)s day after purchase; this one could be until %(until)s.",
                "Gifts can be withdrawn for %(days)s days after purchase; this one could be until %(until)s.",
                days,
            ) % {"days": days, "until": until}
        return None

    def _follow_up_refusal(self, action, now):
        # The gifter's "not redeemed yet" actions, in the gifter's words.
        if self.status == GiftStatus.CLAIMED:
            return _("The gift has already been redeemed.")
        if self.status not in ACTIONS[action] or self.claim_window_passed(now):
            status = _expired_in_words() if self.claim_window_passed(now) else self._status_in_words
            return _("The gift is %(status)s, so it can no longer be sent again or handed over.") % {"status": status}
        if self.delivery_method == DeliveryMethod.HANDOVER:
            return _("You are handing this gift over in person: print its certificate instead.")
        return None

    def _decline_refusal(self, now):
        # The recipient's "No thanks" (redeem page, email link, storefront API), in the recipient's words. A repeat
        # of a decline is answered by gifts.services.gift_decline before asking this.
        if self.status == GiftStatus.CLAIMED:
            return _("This gift has already been redeemed, so it can no longer be declined.")
        if self.status == GiftStatus.EXPIRED or self.claim_window_passed(now):
            return _("This gift has expired, so there is nothing to decline.")
        if self.status == GiftStatus.CANCELLED:
            return _("This gift has been cancelled, so there is nothing to decline.")
        if self.status == GiftStatus.DECLINED:
            return _("This gift has already been declined.")
        if self.status not in ACTIONS[GiftAction.DECLINE]:
            return _("This gift has not been delivered yet, so it cannot be declined.")
        return None

    def _send_elsewhere_refusal(self, now):
        # The gifter's "Send it to someone else" (web and storefront API), in the gifter's words.
        if self.status == GiftStatus.CLAIMED:
            return _("The gift has already been redeemed.")
        if self.status not in ACTIONS[GiftAction.SEND_ELSEWHERE]:
            message = _("The gift is %(status)s; only a declined gift can be sent to someone else.")
            return message % {"status": self._status_in_words}
        if self.claim_window_passed(now):
            return _("The gift's claim window has ended, so it can no longer be sent to someone else.")
        if self.source == Gift.Source.MERCHANT:
            # Its subscription was made for the first receiver by the merchant's own system.
            return _("This gift was sold through the merchant's own system: ask them to send it again.")
        return None

    def _support_refusal(self, action, now):
        # Resend, new code, corrected address: support's words, which an admin reads beside the gift.
        if self.claim_window_passed(now):
            return _("The gift has expired.")  # the expiry sweep has not run yet, but the code is already dead
        if self.status not in ACTIONS[action]:
            if self.status == GiftStatus.SCHEDULED:
                return _("The gift has not been delivered yet; the recipient gets its email on the delivery date.")
            if self.status == GiftStatus.CLAIMED:
                return _("The gift has already been redeemed.")
            return _("The gift is %(status)s.") % {"status": self._status_in_words}
        if self._expired_for_good:
            return _("This gift expired and its subscription was cancelled; it cannot be sent again.")
        if action == GiftAction.RESEND and not self.recipient_email:
            return _("This gift has no recipient address: its gifter hands it over in person.")
        return None


class GiftTimeline(models.Model):
    """One row per status change of a gift (Chargebee's gift_timelines), written with the change."""

    gift = models.ForeignKey(Gift, on_delete=models.CASCADE, related_name="timeline")
    status = models.CharField(max_length=10, choices=GiftStatus.choices)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=100, blank=True, help_text=gettext_lazy("Who or what made the change."))

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            # A gift is scheduled, claimed or cancelled at most once: a second row means a double move. (Only the
            # unclaimed/expired pair can repeat, when an expired gift is sent again.)
            models.UniqueConstraint(
                fields=["gift", "status"],
                condition=Q(status__in=["scheduled", "claimed", "cancelled"]),
                name="gift_timeline_once_per_status",
            )
        ]

    def __str__(self):
        return f"{self.status} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


# --- Designs (the look of a gift's email and certificate) ---------------------------------------------------------

HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
COLOUR = RegexValidator(HEX_COLOUR, gettext_lazy("Enter a colour as #rrggbb, e.g. #1f4e79."))


def _channel(value):
    value = value / 255
    return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4


def contrast_ratio(first, second):
    """WCAG's contrast ratio of two `#rrggbb` colours (1 to 21)."""

    def luminance(colour):
        red, green, blue = (_channel(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


class GiftDesign(models.Model):
    """A look for a gift, chosen at checkout: colours and, optionally, an image; the delivery email and the printable
    certificate use it alike. The admin adds designs without code: the image is kept in the database (PNG, JPEG or
    WebP, small), so every web machine serves it without shared file storage. The built-in designs (plain,
    birthday, holidays) draw their artwork from templates/gifts/designs/<slug>.svg when they have no image."""

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=40, unique=True)
    background_colour = models.CharField(max_length=7, default="#ffffff", validators=[COLOUR])
    accent_colour = models.CharField(max_length=7, default="#1f4e79", validators=[COLOUR])
    text_colour = models.CharField(max_length=7, default="#1a1a1a", validators=[COLOUR])
    image = models.BinaryField(blank=True, default=b"", editable=False)
    image_type = models.CharField(max_length=20, blank=True, editable=False)
    builtin_artwork = models.BooleanField(default=False, editable=False)
    position = models.PositiveSmallIntegerField(
        default=0, help_text=gettext_lazy("Order at checkout (smallest first).")
    )
    is_active = models.BooleanField(
        default=True, help_text=gettext_lazy("Offered at checkout (gifts keep the design they have).")
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if not re.match(HEX_COLOUR, self.background_colour or ""):
            return
        for field in ("text_colour", "accent_colour"):
            colour = getattr(self, field)
            if re.match(HEX_COLOUR, colour or "") and contrast_ratio(colour, self.background_colour) < 4.5:
                message = _("Not readable on the background: choose a colour with a contrast ratio of 4.5:1 or more.")
                raise ValidationError({field: message})

    _default = (0.0, None)  # (monotonic time it is good until, the design): a delivery batch asks for each email

    @classmethod
    def default(cls):
        """The design of a gift that has none (the plain one, or the first active), read at most once a minute."""
        good_until, design = cls._default
        if design is None or time_module.monotonic() > good_until:
            designs = cls.objects.defer("image")
            design = designs.filter(slug="plain").first() or designs.filter(is_active=True).first() or cls()
            cls._default = (time_module.monotonic() + 60, design)
        return design


# --- Bulk gift lists (issue 18: gifts by the hundred) --------------------------------------------------------------


class BulkList(models.Model):
    """A gifter's list of recipients for one offer (gifts/bulk.py): uploaded and checked row by row, paid by one order,
    then made into one ordinary gift per row by a background task that can stop and resume at any row."""

    class Status(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Being checked")
        PAID = "paid", gettext_lazy("Paid; gifts being created")
        DONE = "done", gettext_lazy("Gifts created")

    gifter = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="bulk_lists")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="bulk_lists")
    order = models.OneToOneField(
        "billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_list"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_lists"
    )
    name = models.CharField(max_length=200, blank=True, help_text=gettext_lazy("The uploaded file's name."))
    status = models.CharField(max_length=5, choices=Status.choices, default=Status.DRAFT)
    # Bumped by every change to the rows: an order priced for one revision cannot pay for another.
    revision = models.PositiveIntegerField(default=1)
    gifts_to_create = models.PositiveIntegerField(default=0, help_text=gettext_lazy("Rows paid for (set at payment)."))
    gifts_created = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["draft", "paid", "done"]), name="bulk_list_status_valid"),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(order__isnull=False, paid_at__isnull=False), name="bulk_list_paid"
            ),
            models.CheckConstraint(
                condition=Q(gifts_created__lte=F("gifts_to_create")), name="bulk_list_progress_within_total"
            ),
        ]

    def __str__(self):
        return f"Gift list {self.pk}"


class BulkRow(models.Model):
    """One line of a bulk list: a recipient as uploaded (and corrected), its problems, and, once paid, its gift. The
    gift is keyed by (list, row): a row holds at most one gift and a gift belongs to at most one row (unique), so a
    creation task that crashed and runs again never makes a row's gift twice."""

    bulk_list = models.ForeignKey(BulkList, on_delete=models.CASCADE, related_name="rows")
    number = models.PositiveIntegerField(
        help_text=gettext_lazy("The line in the uploaded file (the header is line 1).")
    )
    # As typed (cells are cut at BULK_CELL_MAX characters), so that a row too long to be a gift can be shown and fixed.
    recipient_email = models.TextField(blank=True)
    recipient_first_name = models.TextField(blank=True)
    personal_note = models.TextField(blank=True)
    delivery_date = models.TextField(blank=True, help_text=gettext_lazy("YYYY-MM-DD."))
    delivery_time = models.TextField(blank=True, help_text=gettext_lazy("HH:MM."))
    time_zone = models.TextField(blank=True)
    language = models.TextField(blank=True)
    scheduled_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("The delivery; empty: once created.")
    )
    problems = models.JSONField(
        default=list, blank=True, help_text=gettext_lazy("What is wrong with the row; empty: valid.")
    )
    dropped = models.BooleanField(default=False)
    gift = models.OneToOneField(Gift, null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_row")

    class Meta:
        ordering = ["bulk_list", "number"]
        constraints = [models.UniqueConstraint(fields=["bulk_list", "number"], name="bulk_row_once_per_line")]
        indexes = [
            # The creation task's query: the list's rows still waiting for their gift.
            models.Index(fields=["bulk_list", "number"], condition=Q(gift__isnull=True), name="bulk_row_waiting_idx")
        ]

    def __str__(self):
        return f"Row {self.number} of list {self.bulk_list_id}"


# --- Group codes (issue 18: one code for N seats) -----------------------------------------------------------------


class GroupCode(models.Model):
    """One code for `seats` redemptions, each by a different account (gifts/group_codes.py). Its code is derived and
    looked up as a gift's is (no column holds it). Each redemption takes a seat with a conditional UPDATE (seats_used <
    seats) and is an ordinary gift, created and redeemed in the same transaction, so it has the single gift's
    lifecycle (subscription, timeline, events, refunds) and shows in the merchant API as a gift."""

    gifter = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="group_codes")
    offer = models.ForeignKey("offers.Offer", on_delete=models.PROTECT, related_name="group_codes")
    order = models.OneToOneField(
        "billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="group_code"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="group_codes"
    )
    code_nonce = models.CharField(max_length=32, default=codes.new_nonce, editable=False)
    code_digest = models.CharField(max_length=64, unique=True, editable=False)
    code_last4 = models.CharField(max_length=4, editable=False)
    seats = models.PositiveIntegerField()
    seats_used = models.PositiveIntegerField(default=0)
    personal_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text=gettext_lazy("Redeemable until then; empty: no end.")
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(seats__gte=1), name="group_code_has_seats"),
            # The last line of defence under the conditional UPDATE: never more redemptions than seats.
            models.CheckConstraint(condition=Q(seats_used__lte=F("seats")), name="group_code_seats_within_total"),
        ]

    def __str__(self):
        return f"Group code {self.pk} ({self.masked_code}, {self.seats_used}/{self.seats})"

    @property
    def code(self):
        """The redeemable code, for its gifter only."""
        return codes.format_code(codes.code_for_nonce(self.code_nonce))

    @property
    def masked_code(self):
        return f"••••-{self.code_last4}"

    @property
    def seats_left(self):
        return self.seats - self.seats_used

    def assign_code(self):
        self.code_nonce = codes.new_nonce()
        raw = codes.code_for_nonce(self.code_nonce)
        self.code_digest = codes.digest(raw)
        self.code_last4 = raw[-4:]


class GroupSeat(models.Model):
    """A seat of a group code taken by one account, with the gift its redemption made. Unique per account: the same
    account redeeming twice (even at once) is refused by the database."""

    group_code = models.ForeignKey(GroupCode, on_delete=models.CASCADE, related_name="redemptions")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="group_seats")
    gift = models.OneToOneField(Gift, on_delete=models.PROTECT, related_name="group_seat")
    redeemed_at = models.DateTimeField()

    class Meta:
        ordering = ["group_code", "redeemed_at", "id"]
        constraints = [models.UniqueConstraint(fields=["group_code", "customer"], name="group_seat_once_per_account")]

    def __str__(self):
        return f"Seat of {self.group_code_id} for customer {self.customer_id}"
