"""Bulk gift lists (issue 18): a CSV of recipients, read as a stream and checked row by row (the validation report),
corrected or dropped by the gifter and checked again; once paid (billing/bulk_sales.py), made into one ordinary gift
per row, in batches, by a background task that resumes where it stopped without making any row's gift twice; and
what "My gifts" shows of a list (each recipient's status, a CSV export).

Spreadsheet formulas: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is *refused* (a problem
of its row, shown in the report; the gifter removes the character), never silently changed: what the recipient reads
is what the gifter wrote. The CSV export neutralises such cells instead (a leading `'`), as OWASP advises, because a
gift's text may come from the other ways of buying one."""

import codecs
import csv
import functools
import io
import logging
import re
import time
import zoneinfo
from datetime import date
from datetime import time as clock

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from emails.models import Email
from emails.services import email_queue
from gifts import services
from gifts.models import BulkList, BulkRow, Gift, GiftStatus, GiftTimeline, gift_fields_clean, scheduled_or_now
from gifts.selectors import UNDELIVERABLE
from gifts.services import epoch_ms, events_record, gift_defaults
from giftshop import ratelimit
from giftshop.errors import ServiceError
from giftshop.timezones import local_to_utc

logger = logging.getLogger(__name__)

# The columns a list may have, and the header names each is recognised by (case, spaces and "_" ignored).
COLUMNS = {
    "recipient_email": ("email", "emailaddress", "recipientemail", "recipient"),
    "recipient_first_name": ("firstname", "name", "recipientfirstname", "givenname"),
    "personal_note": ("message", "note", "personalnote", "personalmessage"),
    "delivery_date": ("date", "deliverydate"),
    "delivery_time": ("time", "deliverytime"),
    "time_zone": ("timezone", "zone", "tz"),
    "language": ("language", "lang", "locale"),
}
HEADER_NAMES = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
# A cell that a spreadsheet would run as a formula when the file is opened again (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Longer cells are cut when stored (the row is refused anyway: no gift field is this long).
BULK_CELL_MAX = 1000
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^\d{1,2}:\d{2}$")
# A date without a time means this time there, as in the web checkout.
DEFAULT_DELIVERY_TIME = clock(9, 0)
FILE_HELP = gettext_lazy("Save it from your spreadsheet as “CSV UTF-8 (comma delimited)”.")


class BulkFileError(ServiceError):
    """The file as a whole cannot be read as a list (nothing is created); its row problems are in the report."""

    def __init__(self, message):
        super().__init__(message, code="bad_file", field="file", status=400)


def _with_file_help(message):
    """A BulkFileError saying what is wrong, then how to save a list as CSV."""
    return BulkFileError(f"{message} {FILE_HELP}")


# --- reading a file -----------------------------------------------------------------------------------------------


def _text_lines(source):
    """The file's lines as text, decoded as it is read (the file is never held whole in memory): UTF-8, with or
    without the byte-order mark spreadsheets write. `source` is a binary file or, for pasted rows, a str."""
    if isinstance(source, str):
        return io.StringIO(source.lstrip("\ufeff"), newline="")
    start = source.read(4)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _with_file_help(_("This file is UTF-16 text (“Unicode text” in Excel), not CSV."))
    if start.startswith(b"PK\x03\x04") or start.startswith(b"\xd0\xcf\x11\xe0"):
        raise _with_file_help(_("This is a spreadsheet workbook, not a CSV file."))
    source.seek(0)
    return io.TextIOWrapper(source, encoding="utf-8-sig", newline="")


def _columns(header_line):
    """The delimiter and the column of each header cell; BulkFileError when the first line is not a header."""
    delimiter = max(",;\t", key=header_line.count)
    cells = next(csv.reader([header_line], delimiter=delimiter), [])
    keys = [re.sub(r"[\s_\-]", "", cell).lower() for cell in cells]
    if not any(HEADER_NAMES.get(key) == "recipient_email" for key in keys):
        raise BulkFileError(
            _(
                "The first line must name the columns, with at least “email” (then, as you like: first_name, message, "
                "date, time, time_zone, language)."
            )
        )
    unknown = [cell for cell, key in zip(cells, keys, strict=True) if key and key not in HEADER_NAMES]
    if unknown:
        raise BulkFileError(_("Unknown column “%(column)s”: use email, first_name, message, date, time, "
                              "time_zone and language.") % {"column": unknown[0][:40]})  # fmt: skip
    columns = [HEADER_NAMES.get(key) for key in keys]
    repeated = {column for column in columns if column and columns.count(column) > 1}
    if repeated:
        raise BulkFileError(_("The column “%(column)s” is named twice.") % {"column": sorted(repeated)[0]})
    return delimiter, columns


def read_rows(source, *, max_rows=None):
    """Yields (line number, {column: cell}) for each non-empty line of a list file, as it is read. BulkFileError
    for a file that is not a list: another encoding, a workbook, no header, too many rows."""
    max_rows = max_rows or settings.BULK_MAX_ROWS
    lines = _text_lines(source)
    try:
        header = lines.readline()
        while header and not header.strip():
            header = lines.readline()
        if not header:
            raise BulkFileError(_("The file is empty."))
        delimiter, columns = _columns(header)
        count = 0
        reader = csv.reader(lines, delimiter=delimiter)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if any("\x00" in cell for cell in cells):
                raise _with_file_help(_("This file holds NUL bytes, so it is not text."))
            count += 1
            if count > max_rows:
                raise BulkFileError(
                    _("A list has at most %(rows)s rows; split the file.")
                    % {"rows": number_format(max_rows, force_grouping=True)}
                )
            row = dict.fromkeys(COLUMNS, "")
            for column, cell in zip(columns, cells, strict=False):
                if column:
                    row[column] = cell[:BULK_CELL_MAX]
            if len(cells) > len(columns):
                row["extra_cells"] = True
            yield reader.line_num + 1, row  # + 1: the header was read apart
    except UnicodeDecodeError:
        raise _with_file_help(_("This file is not UTF-8 text.")) from None
    except csv.Error as error:
        raise _with_file_help(_("This file cannot be read as CSV (%(error)s).") % {"error": error}) from None


# --- checking rows ----------------------------------------------------------------------------------------------


@functools.cache
def _zones():
    # zoneinfo.available_timezones() walks the zone files on every call (~4 ms): once per process.
    return frozenset(zoneinfo.available_timezones())


def site_language(code):
    """The site's language (settings.LANGUAGES) a cell names, as the gift stores it ("de", "de-DE", "de_DE" → "de"),
    or "" for a language the site does not speak."""
    code = code.strip().lower().replace("_", "-")
    try:
        return translation.get_supported_language_variant(code) if code else ""
    except LookupError:
        return ""


def _scheduled_at(row, problems, *, zone_name, now):
    day, hour = row["delivery_date"].strip(), row["delivery_time"].strip()
    if not day:
        if hour:
            problems.append(_("A delivery time needs a date."))
        return None
    if not DATE_RE.match(day):
        problems.append(_("The date must look like 2026-12-24."))
        return None
    if hour and not TIME_RE.match(hour):
        problems.append(_("The time must look like 09:30."))
        return None
    try:
        on = date.fromisoformat(day)
        at = clock.fromisoformat(hour.zfill(5)) if hour else DEFAULT_DELIVERY_TIME
    except ValueError:
        problems.append(_("There is no such date or time."))
        return None
    when = local_to_utc(on, at, zone_name)
    if when < now:
        problems.append(_("The delivery date is in the past."))
    return when


def row_check(row, *, gifter_zone, now):
    """Checks one row: its cleaned values (the address lower-cased), its delivery time (None: once created) and
    its problems, in the words of the report."""
    problems, values = [], {}
    for column in ("recipient_email", "recipient_first_name", "personal_note"):
        value = row.get(column, "")
        if value.startswith(FORMULA_STARTS):
            problems.append(
                _("“%(value)s” starts like a spreadsheet formula; remove the first character.") % {"value": value[:20]}
            )
        values[column] = value
    if row.get("extra_cells"):
        problems.append(_("This line has more cells than the header has columns."))
    if not values["recipient_email"].strip():
        problems.append(_("The email address is missing."))
    else:
        for column, message in (
            ("recipient_email", _("“%(shown)s” is not a valid email address.")),
            ("recipient_first_name", _("The first name must be one line of at most 150 characters.")),
            ("personal_note", _("The message must be at most 255 characters (it has %(shown)s).")),
        ):
            try:
                values.update(gift_fields_clean(**{column: values[column]}))
            except ServiceError:
                shown = values[column][:60] if column == "recipient_email" else len(values[column])
                problems.append(message % {"shown": shown})
    zone_name = row.get("time_zone", "").strip()
    if zone_name and zone_name not in _zones():
        problems.append(_("“%(zone)s” is not a time zone we know (e.g. Europe/Berlin).") % {"zone": zone_name[:40]})
        zone_name = ""
    language = row.get("language", "").strip()
    if language and not site_language(language):
        offered = ", ".join(code for code, _name in settings.LANGUAGES)
        problems.append(
            _("“%(code)s” is not a language code we know (one of %(offered)s).")
            % {"code": language[:20], "offered": offered}
        )
    language = site_language(language) or language  # the gift's language ("de"); a wrong one as typed, to correct
    scheduled_at = _scheduled_at(row, problems, zone_name=zone_name or gifter_zone, now=now)
    values.update(
        delivery_date=row.get("delivery_date", "").strip(),
        delivery_time=row.get("delivery_time", "").strip(),
        time_zone=zone_name or row.get("time_zone", "").strip(),
        language=language,
    )
    return values, scheduled_at, problems


def _duplicates(rows):
    """Adds "same address as line N" to every later row with an address already in the list (case ignored)."""
    first = {}
    for row in rows:
        if row.dropped or not row.recipient_email:
            continue
        key = row.recipient_email.strip().lower()
        if key in first:
            row.problems = [*row.problems, _("Same address as line %(line)s.") % {"line": first[key]}]
        else:
            first[key] = row.number


# --- the list before payment --------------------------------------------------------------------------------------

ROW_FIELDS = [
    "recipient_email",
    "recipient_first_name",
    "personal_note",
    "delivery_date",
    "delivery_time",
    "time_zone",
    "language",
    "scheduled_at",
    "problems",
]


@transaction.atomic
def bulk_list_create(*, gifter, offer, source, name="", now=None):
    """A new draft list from an uploaded file (binary) or pasted text (str), every row checked and stored in
    batches as it is read. BulkFileError creates nothing, whichever line it is found on."""
    now = now or timezone.now()
    if not offer.active or not offer.giftable:
        raise ServiceError(_("This plan cannot be given as a gift."), field="offer", code="not_giftable")
    gifter_zone = gifter.zone().key
    bulk_list = BulkList.objects.create(gifter=gifter, offer=offer, name=name[:200], created_at=now)
    seen, batch, count = {}, [], 0
    for number, cells in read_rows(source):
        values, scheduled_at, problems = row_check(cells, gifter_zone=gifter_zone, now=now)
        key = values["recipient_email"].strip().lower()
        if key and key in seen:
            problems.append(_("Same address as line %(line)s.") % {"line": seen[key]})
        elif key:
            seen[key] = number
        batch.append(
            BulkRow(bulk_list=bulk_list, number=number, scheduled_at=scheduled_at, problems=problems, **values)
        )
        count += 1
        if len(batch) >= 1000:
            BulkRow.objects.bulk_create(batch)
            batch = []
    if not count:
        raise BulkFileError(_("The file has a header but no rows."))
    BulkRow.objects.bulk_create(batch)
    return bulk_list


def bulk_list_for_gifter(customer, list_id, *, lock=False):
    """The access rule for a list: only its gifter sees it; anyone else gets 404."""
    lists = BulkList.objects.select_related("offer", "gifter", "order", "invoice")
    if lock:
        lists = lists.select_for_update(of=("self",))
    return get_object_or_404(lists, pk=list_id, gifter=customer)


def _draft_for_update(gifter, list_id):
    bulk_list = bulk_list_for_gifter(gifter, list_id, lock=True)
    if bulk_list.status != BulkList.Status.DRAFT:
        raise ServiceError(_("This list is paid for; change its gifts one by one."), code="list_paid", status=409)
    return bulk_list


@transaction.atomic
def bulk_rows_update(*, gifter, list_id, changes=None, dropped=(), restored=(), now=None):
    """The gifter's corrections to a draft list: `changes` {row id: {column: value}}, rows `dropped` or `restored`;
    then every row is checked again (a past date, or a duplicate that another row's fix made, shows up)."""
    bulk_list = _draft_for_update(gifter, list_id)
    rows = {row.pk: row for row in bulk_list.rows.filter(pk__in=[*(changes or {}), *dropped, *restored])}
    for row_id, values in (changes or {}).items():
        row = rows.get(row_id)
        for column, value in values.items():
            if row is not None and column in COLUMNS:
                setattr(row, column, str(value)[:BULK_CELL_MAX])
    for row_id in dropped:
        if row_id in rows:
            rows[row_id].dropped = True
    for row_id in restored:
        if row_id in rows:
            rows[row_id].dropped = False
    BulkRow.objects.bulk_update(list(rows.values()), [*COLUMNS, "dropped"], batch_size=1000)
    return _recheck(bulk_list, now or timezone.now())


def bulk_row_ids(bulk_list, lines):
    """{line: row id} of the list's rows on these lines (the storefront API names rows by line)."""
    return dict(bulk_list.rows.filter(number__in=lines).values_list("number", "pk"))


@transaction.atomic
def bulk_list_recheck(*, gifter, list_id, now=None):
    """Checks every row of a draft list again (dates pass, and the gifter's zone may have changed)."""
    return _recheck(_draft_for_update(gifter, list_id), now or timezone.now())


def _recheck(bulk_list, now):
    gifter_zone = bulk_list.gifter.zone().key
    rows = list(bulk_list.rows.order_by("number"))
    for row in rows:
        cells = {column: getattr(row, column) for column in COLUMNS}
        values, row.scheduled_at, row.problems = row_check(cells, gifter_zone=gifter_zone, now=now)
        for column, value in values.items():
            setattr(row, column, value)
    _duplicates(rows)
    BulkRow.objects.bulk_update(rows, ROW_FIELDS, batch_size=1000)
    BulkList.objects.filter(pk=bulk_list.pk).update(revision=F("revision") + 1)
    bulk_list.refresh_from_db()
    return bulk_list


def bulk_list_summary(bulk_list):
    """{"rows", "valid", "invalid", "dropped"}: what the report says above its table, and what payment needs (no
    invalid row: each is fixed or dropped)."""
    counts = bulk_list.rows.aggregate(
        n_rows=Count("pk"),
        n_dropped=Count("pk", filter=Q(dropped=True)),
        n_valid=Count("pk", filter=Q(dropped=False, problems=[])),
    )
    rows, dropped, valid = counts["n_rows"], counts["n_dropped"], counts["n_valid"]
    return {"rows": rows, "valid": valid, "invalid": rows - dropped - valid, "dropped": dropped}


def bulk_list_payable(bulk_list, now):
    """The number of gifts a draft list would make (its valid rows, none of them due in the past); ServiceError
    when it cannot be paid for yet."""
    if bulk_list.status != BulkList.Status.DRAFT:
        raise ServiceError(_("This list is already paid for."), code="list_paid", status=409)
    counts = bulk_list_summary(bulk_list)
    if counts["invalid"]:
        raise ServiceError(
            _("%(rows)s rows still have problems: fix or drop them, then check again.") % {"rows": counts["invalid"]},
            code="list_has_problems",
            status=409,
        )
    if bulk_list.rows.filter(dropped=False, scheduled_at__lt=now).exists():
        raise ServiceError(_("Some delivery dates have passed since the check: check the list again."),
                           code="list_has_problems", status=409)  # fmt: skip
    if not counts["valid"]:
        raise ServiceError(_("The list has no rows left to give."), code="list_empty", status=409)
    return counts["valid"]


def bulk_list_paid(*, list_id, revision, order, invoice, now):
    """Called in the payment's transaction (billing): the list is frozen as paid for its `revision` (the one the
    order was priced for; a list changed in between refuses, and the payment is refunded), ready for the task."""
    bulk_list = BulkList.objects.select_for_update(of=("self",)).get(pk=list_id)
    if bulk_list.status != BulkList.Status.DRAFT or bulk_list.revision != revision:
        raise ServiceError(_("The list changed while it was being paid for; check it and pay again."),
                           code="list_changed", status=409)  # fmt: skip
    valid = bulk_list.rows.filter(dropped=False, problems=[]).count()
    if valid != order.quantity:
        raise ServiceError(_("The list changed while it was being paid for."), code="list_changed", status=409)
    BulkList.objects.filter(pk=list_id).update(
        status=BulkList.Status.PAID, order=order, invoice=invoice, paid_at=now, gifts_to_create=valid
    )
    bulk_list.refresh_from_db()
    return bulk_list


# --- making the gifts -----------------------------------------------------------------------------------------


def bulk_gifts_create(*, list_id, batch_size=None, budget=None, max_batches=None, now=None):
    """Makes the gifts of a paid list, a batch per transaction: the batch's waiting rows are locked (SKIP LOCKED, so
    two runs share the work), each gets one `scheduled` gift as gift_create makes them (code, timeline row,
    gift_scheduled event; no receipt each: the list has one email when done), and the row is tied to it in the same
    transaction. A run that dies loses only its open batch, and the next run takes the rows still without a gift.
    `budget`: seconds after which the run stops between batches (its task then queues the next run); `max_batches`:
    batches after which it stops (a test watching the progress). Returns (gifts made, whether the list is done); it
    is done, and its gifter emailed once, when no row waits."""
    batch_size = batch_size or settings.BULK_BATCH_SIZE
    made, started, batches = 0, time.monotonic(), 0
    bulk_list = BulkList.objects.select_related("gifter", "offer").get(pk=list_id)
    if bulk_list.status != BulkList.Status.PAID:
        return 0, bulk_list.status == BulkList.Status.DONE
    while budget is None or time.monotonic() - started < budget:
        with transaction.atomic():
            rows = list(
                BulkRow.objects.select_for_update(skip_locked=True)
                .filter(bulk_list_id=list_id, gift__isnull=True, dropped=False, problems=[])
                .order_by("number")[:batch_size]
            )
            if rows:
                _create_batch(bulk_list, rows, now or timezone.now())
        made, batches = made + len(rows), batches + 1
        if len(rows) < batch_size or batches == max_batches:
            break
    return made, _finish(list_id, now or timezone.now())


def _create_batch(bulk_list, rows, now):
    defaults = {}
    gifts = []
    for row in rows:
        scheduled_at = scheduled_or_now(row.scheduled_at, now)
        if scheduled_at not in defaults:
            defaults[scheduled_at] = gift_defaults(scheduled_at=scheduled_at)
        auto_claim, no_expiry, claim_expiry_date = defaults[scheduled_at]
        gifts.append(
            Gift(
                gifter_id=bulk_list.gifter_id,
                offer_id=bulk_list.offer_id,
                invoice_id=bulk_list.invoice_id,
                recipient_email=row.recipient_email,
                recipient_first_name=row.recipient_first_name,
                personal_note=row.personal_note,
                scheduled_at=scheduled_at,
                time_zone=row.time_zone,
                language=row.language,
                auto_claim=auto_claim,
                no_expiry=no_expiry,
                claim_expiry_date=claim_expiry_date,
                created_at=now,
                updated_at=now,
                resource_version=epoch_ms(now),
            )
        )
    gifts = gifts_insert_with_codes(gifts)
    actor = f"customer:{bulk_list.gifter_id}"
    GiftTimeline.objects.bulk_create(
        [GiftTimeline(gift=gift, status=GiftStatus.SCHEDULED, occurred_at=now, actor=actor) for gift in gifts]
    )
    for row, gift in zip(rows, gifts, strict=True):
        row.gift = gift
        # The gift holds the recipient now; the row keeps no second copy (erasure and retention see the gift's).
        row.recipient_email = row.recipient_first_name = row.personal_note = ""
        logger.info("gift %s bought (list %s, line %s), due %s", gift.pk, bulk_list.pk, row.number,
                    gift.scheduled_at.isoformat(), extra={"gift_id": gift.pk})  # fmt: skip
    BulkRow.objects.bulk_update(rows, ["gift", "recipient_email", "recipient_first_name", "personal_note"])
    events_record(gift_ids=[gift.pk for gift in gifts], event_type="gift_scheduled", now=now)
    BulkList.objects.filter(pk=bulk_list.pk).update(gifts_created=F("gifts_created") + len(gifts))


def gifts_insert_with_codes(gifts):
    """Inserts the gifts with fresh codes; a (one in 10^12-ish) collision on the unique digest gives the whole batch
    new codes instead of an error."""
    for _attempt in range(5):
        for gift in gifts:
            gift.assign_code()
        try:
            with transaction.atomic():
                return Gift.objects.bulk_create(gifts)
        except IntegrityError as error:
            if "code_digest" not in str(error):
                raise
            for gift in gifts:
                gift.pk = None
    raise RuntimeError("could not find free gift codes")  # pragma: no cover


def _finish(list_id, now):
    """Done once no row waits: the conditional UPDATE marks it once, and only that run queues the gifter's email."""
    with transaction.atomic():
        waiting = BulkRow.objects.filter(bulk_list_id=list_id, gift__isnull=True, dropped=False, problems=[])
        if waiting.exists():
            return False
        done = BulkList.objects.filter(pk=list_id, status=BulkList.Status.PAID).update(
            status=BulkList.Status.DONE, completed_at=now
        )
        if done:
            bulk_list = BulkList.objects.select_related("gifter", "order").get(pk=list_id)
            email_queue(
                kind=Email.Kind.BULK_DONE, key=f"bulk:{list_id}:done", to=bulk_list.gifter.email, order=bulk_list.order
            )
        return bool(done)


def bulk_gift_resend(*, gifter, list_id, gift_id, now=None):
    """The gifter emails one delivered gift of their list again (same code, same address). Each resend emails
    someone, so it counts against the gifter's hourly budget of recipient changes (RECIPIENT_CHANGES_PER_HOUR)."""
    bulk_list = bulk_list_for_gifter(gifter, list_id)
    if not bulk_list.rows.filter(gift_id=gift_id).exists():
        raise ServiceError(_("This gift is not on this list."), code="not_found", status=404)
    try:
        ratelimit.reserve("recipient-change", [f"customer:{gifter.pk}"], fail_open=True)
    except ratelimit.LimitExceeded as limited:
        raise ServiceError(
            f"You have sent many gifts again in the last hour. Try again in {limited.minutes} minutes.",
            code="too_many_resends",
            status=429,
        ) from None
    return services.gift_resend(gift_id=gift_id, actor=f"customer:{gifter.pk}", now=now)


# --- what the gifter sees of a paid list ----------------------------------------------------------------------

# Each recipient's status, as "My gifts" names it. The shop records no opens (no tracking pixel): a delivered gift
# is "sent" until it is redeemed.
ROW_STATUS_WORDS = {
    GiftStatus.SCHEDULED: "scheduled",
    GiftStatus.UNCLAIMED: "sent",
    GiftStatus.CLAIMED: "redeemed",
    GiftStatus.EXPIRED: "expired",
    GiftStatus.CANCELLED: "cancelled",
    GiftStatus.DECLINED: "declined",
}


# The words as the page shows them (the CSV export and the page's data-status keep the English ones above).
ROW_STATUS_LABELS = {
    "waiting": pgettext_lazy("a list gift's status", "waiting"),
    "bounced": pgettext_lazy("a list gift's status", "bounced"),
    "scheduled": pgettext_lazy("a list gift's status", "scheduled"),
    "sent": pgettext_lazy("a list gift's status", "sent"),
    "opened": pgettext_lazy("a list gift's status", "opened"),
    "redeemed": pgettext_lazy("a list gift's status", "redeemed"),
    "expired": pgettext_lazy("a list gift's status", "expired"),
    "cancelled": pgettext_lazy("a list gift's status", "cancelled"),
    "declined": pgettext_lazy("a list gift's status", "declined"),
}


def row_status(gift):
    """A list gift's status in one word; `gift` is annotated with last_delivery_status (and, from a list's rows,
    delivery_opened: the provider reported a delivery email of it opened or its link clicked)."""
    if gift is None:
        return "waiting"
    if gift.status == GiftStatus.UNCLAIMED and gift.last_delivery_status in UNDELIVERABLE:
        return "bounced"
    if gift.status == GiftStatus.UNCLAIMED and getattr(gift, "delivery_opened", False):
        return "opened"
    return ROW_STATUS_WORDS[gift.status]


def bulk_list_gifts(bulk_list):
    """The list's rows with their gifts (annotated for row_status), in file order: one query however long."""
    rows = bulk_list.rows.filter(dropped=False, problems=[]).order_by("number")
    return rows.select_related("gift").annotate(
        gift_delivery_status=_row_delivery_status(), gift_delivery_opened=_row_delivery_opened()
    )


def _row_delivery_status():
    # last_delivery_status, for a row's gift rather than a gift.
    latest = Email.objects.filter(gift=OuterRef("gift_id"), kind=Email.Kind.GIFT_DELIVERY).order_by("-pk")
    return Subquery(latest.values("status")[:1])


def _row_delivery_opened():
    # A click counts as an open: images (the open pixel) may be blocked while the link is followed.
    deliveries = Email.objects.filter(gift=OuterRef("gift_id"), kind=Email.Kind.GIFT_DELIVERY)
    return Exists(deliveries.filter(Q(opened_at__isnull=False) | Q(clicked_at__isnull=False)))


def bulk_list_counts(bulk_list):
    """{status word: number of gifts} for the list page's summary."""
    counts = {}
    for row in bulk_list_gifts(bulk_list).iterator(chunk_size=1000):
        word = row_status(gift_with_status(row))
        counts[word] = counts.get(word, 0) + 1
    return counts


def gift_with_status(row):
    """The row's gift (None before it is made), annotated as row_status wants it."""
    if row.gift is not None:
        row.gift.last_delivery_status = row.gift_delivery_status
        row.gift.delivery_opened = row.gift_delivery_opened
    return row.gift


def neutralised(value):
    """A cell a spreadsheet will not run as a formula (OWASP's CSV injection advice: a leading apostrophe)."""
    value = "" if value is None else str(value)
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


EXPORT_HEADER = ["line", "email", "first_name", "status", "scheduled_at", "sent_at", "redeemed_at", "gift_id"]


def bulk_list_export_rows(bulk_list):
    """The status export's rows (header first), streamed: every cell neutralised, times in UTC ISO 8601."""
    yield EXPORT_HEADER
    for row in bulk_list_gifts(bulk_list).iterator(chunk_size=1000):
        gift = gift_with_status(row)
        yield [
            row.number,
            neutralised(gift.recipient_email if gift else row.recipient_email),
            neutralised(gift.recipient_first_name if gift else row.recipient_first_name),
            row_status(gift),
            gift.scheduled_at.isoformat() if gift else "",
            gift.sent_at.isoformat() if gift and gift.sent_at else "",
            gift.claimed_at.isoformat() if gift and gift.claimed_at else "",
            gift.pk if gift else "",
        ]
