"""What the customer's list pages share, whichever app serves them: times shown in the customer's zone, and
paging by ?page=N."""

from django.utils import timezone
from django.utils.dateformat import format as format_date

PAGE_SIZE = 25
WHEN = "j M Y, H:i"


def local_time(when, zone):
    """`when` as shown on the pages, in `zone`; "" for no time."""
    return format_date(timezone.localtime(when, zone), WHEN) if when else ""


def page_number(request):
    """The requested ?page=, 1 when missing or not a number."""
    try:
        return max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        return 1


def pager(page, total):
    """The previous and next page numbers for the pager template (None at either end)."""
    return {"previous_page": page - 1 or None, "next_page": page + 1 if page * PAGE_SIZE < total else None}
