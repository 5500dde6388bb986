"""Bulk gift lists (issue 18): the file is read and checked row by row, fixed and checked again, paid with one order,
made into gifts by a task that resumes without duplicates, and followed in "My gifts"."""

import csv
import io
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from accounts.models import Transaction
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing import bulk_sales
from billing.bulk_sales import bulk_checkout
from billing.gateways import PaymentError
from billing.gift_sales import gift_cancel
from billing.models import Invoice, Order, Payment
from emails.models import Email
from gifts import bulk
from gifts.models import BulkList, BulkRow, Gift, GiftStatus, GiftTimeline
from gifts.services import deliver_due_gifts
from giftshop.errors import ServiceError
from giftshop.mediastore import issue_jwt
from offers.models import QuantityTier
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def offer():
    return OfferFactory(title="Premium monthly", price=Decimal("10.00"))


@pytest.fixture
def gifter():
    return CustomerFactory(email="hr@example.com", time_zone="Europe/Berlin")


def csv_text(*lines, header="email,first_name,message,date,time,time_zone,language"):
    return "\n".join([header, *lines]) + "\n"


def upload(text, encoding="utf-8"):
    return io.BytesIO(text.encode(encoding))


def make_list(gifter, offer, text):
    with time_machine.travel(NOW, tick=False):
        return bulk.bulk_list_create(gifter=gifter, offer=offer, source=upload(text), name="team.csv")


def problems_by_line(bulk_list):
    return {row.number: row.problems for row in bulk_list.rows.order_by("number")}


# --- reading and checking the file --------------------------------------------------------------------------------


def test_it_reads_a_valid_file_and_stores_each_row_checked(gifter, offer):
    bulk_list = make_list(
        gifter,
        offer,
        csv_text(
            "Ada@Example.com,Ada,Happy holidays!,2026-12-24,18:30,Europe/London,en",
            "grace@example.com,Grace,,2026-12-24,,,fr",
            "linus@example.com,,,,,,",
        ),
    )
    rows = list(bulk_list.rows.order_by("number"))
    assert [row.number for row in rows] == [2, 3, 4]
    assert all(row.problems == [] for row in rows)
    assert rows[0].recipient_email == "ada@example.com"
    assert rows[0].scheduled_at == datetime(2026, 12, 24, 18, 30, tzinfo=UTC)  # London is UTC in winter
    assert rows[1].scheduled_at == datetime(2026, 12, 24, 8, 0, tzinfo=UTC)  # a date alone: 09:00 the gifter's zone
    assert rows[2].scheduled_at is None  # once the gifts are made
    assert bulk.bulk_list_summary(bulk_list) == {"rows": 3, "valid": 3, "invalid": 0, "dropped": 0}


def test_it_reports_each_bad_row_with_its_problem(gifter, offer):
    bulk_list = make_list(
        gifter,
        offer,
        csv_text(
            "not-an-address,,,,,,",
            "ok@example.com,,,,,,",
            "OK@example.com,,,,,,",
            "past@example.com,,,2026-11-30,,,",
            f"long@example.com,,{'x' * 256},,,,",
            "zone@example.com,,,2026-12-24,,Mars/Olympus,",
            "lang@example.com,,,,,,klingon",
            '=HYPERLINK("http://evil"),,,,,,',
            "formula@example.com,,@SUM(A1),,,,",
            "time@example.com,,,,10:00,,",
            "extra@example.com,,,,,,,surplus",
        ),
    )
    problems = problems_by_line(bulk_list)
    assert "is not a valid email address" in problems[2][0]
    assert problems[3] == []
    assert problems[4] == ["Same address as line 3."]
    assert problems[5] == ["The delivery date is in the past."]
    assert problems[6] == ["The message must be at most 255 characters (it has 256)."]
    assert "not a time zone we know" in problems[7][0]
    assert "not a language code we know" in problems[8][0]
    assert any("spreadsheet formula" in p for p in problems[9])
    assert any("spreadsheet formula" in p for p in problems[10])
    assert problems[11] == ["A delivery time needs a date."]
    assert problems[12] == ["This line has more cells than the header has columns."]
    assert bulk.bulk_list_summary(bulk_list)["invalid"] == 10


def test_it_accepts_a_spreadsheets_utf8_bom_and_semicolons(gifter, offer):
    text = "\ufeffemail;first_name\nzoe@example.com;Zoë\n"
    bulk_list = make_list(gifter, offer, text)
    row = bulk_list.rows.get()
    assert (row.recipient_email, row.recipient_first_name, row.problems) == ("zoe@example.com", "Zoë", [])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("email,name\nzoë@example.com,Zoë\n".encode("latin-1"), "not UTF-8"),
        ("email\nzoe@example.com\n".encode("utf-16"), "UTF-16"),
        (b"PK\x03\x04 a workbook", "spreadsheet workbook"),
        (b"name,message\nAda,hi\n", "must name the columns"),
        (b"email,favourite_colour\na@example.com,red\n", "Unknown column"),
        (b"email,e-mail\na@example.com,b@example.com\n", "named twice"),
        (b"email\n", "no rows"),
        (b"", "empty"),
        (b"email\na@example.com\x00\n", "NUL bytes"),
    ],
)
def test_a_bad_file_gets_a_clear_error_and_creates_nothing(gifter, offer, data, message):
    with pytest.raises(bulk.BulkFileError, match=message):
        bulk.bulk_list_create(gifter=gifter, offer=offer, source=io.BytesIO(data))
    assert not BulkList.objects.exists() and not BulkRow.objects.exists()


def test_a_decoding_error_deep_in_a_long_file_creates_nothing(gifter, offer):
    good = "".join(f"person{n}@example.com\n" for n in range(2500))
    data = ("email\n" + good).encode() + b"caf\xe9@example.com\n"
    with pytest.raises(bulk.BulkFileError, match="not UTF-8"):
        bulk.bulk_list_create(gifter=gifter, offer=offer, source=io.BytesIO(data))
    assert not BulkRow.objects.exists()


def test_a_list_has_at_most_the_configured_rows(gifter, offer, settings):
    settings.BULK_MAX_ROWS = 3
    with pytest.raises(bulk.BulkFileError, match="at most 3 rows"):
        make_list(gifter, offer, csv_text(*(f"p{n}@example.com,,,,,," for n in range(4))))
    assert make_list(gifter, offer, csv_text(*(f"p{n}@example.com,,,,,," for n in range(3)))).rows.count() == 3


def test_fixing_and_dropping_rows_then_checking_again_clears_the_report(gifter, offer):
    bulk_list = make_list(gifter, offer, csv_text("bad,,,,,,", "dup@example.com,,,,,,", "DUP@example.com,,,,,,"))
    rows = {row.number: row for row in bulk_list.rows.all()}
    with time_machine.travel(NOW, tick=False):
        bulk_list = bulk.bulk_rows_update(
            gifter=gifter,
            list_id=bulk_list.pk,
            changes={rows[2].pk: {"recipient_email": "fixed@example.com"}},
            dropped=[rows[4].pk],
        )
    assert bulk.bulk_list_summary(bulk_list) == {"rows": 3, "valid": 2, "invalid": 0, "dropped": 1}
    assert bulk_list.revision == 2
    with time_machine.travel(NOW, tick=False):  # restoring the duplicate brings its problem back
        bulk_list = bulk.bulk_rows_update(gifter=gifter, list_id=bulk_list.pk, restored=[rows[4].pk])
    assert problems_by_line(bulk_list)[4] == ["Same address as line 3."]


def test_a_date_that_passed_since_the_upload_is_caught_by_the_check_again(gifter, offer):
    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,2026-12-02,09:00,UTC,"))
    assert bulk.bulk_list_summary(bulk_list)["invalid"] == 0
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        bulk_list = bulk.bulk_list_recheck(gifter=gifter, list_id=bulk_list.pk)
    assert problems_by_line(bulk_list)[2] == ["The delivery date is in the past."]


def test_validating_five_thousand_rows_takes_under_three_seconds(gifter, offer):

    text = csv_text(
        *(f"person{n}@example.com,Name {n},Hello {n},2026-12-24,09:00,Europe/Paris,en" for n in range(5000))
    )
    started = time.perf_counter()
    bulk_list = make_list(gifter, offer, text)
    elapsed = time.perf_counter() - started
    assert bulk.bulk_list_summary(bulk_list)["valid"] == 5000
    assert elapsed < 3, elapsed


# --- paying -------------------------------------------------------------------------------------------------------


def paid_list(gifter, offer, lines, capture, **checkout):
    """A list paid at NOW, its gifts made by the task (run at the commit, as in production)."""

    bulk_list = make_list(gifter, offer, csv_text(*lines))
    card = PaymentMethodFactory(customer=gifter, token="tok_visa")
    with time_machine.travel(NOW, tick=True), capture(execute=True):
        bulk_checkout(gifter=gifter, list_id=bulk_list.pk, payment_method=card, **checkout)
    bulk_list.refresh_from_db()
    return bulk_list


def test_a_list_is_one_order_one_invoice_one_charge_with_the_quantity_tier_and_a_coupon(
    gifter, offer, django_capture_on_commit_callbacks
):
    QuantityTier.objects.create(offer=offer, min_quantity=10, percent_off=Decimal("10"))
    QuantityTier.objects.create(offer=offer, min_quantity=50, percent_off=Decimal("20"))
    coupon = CouponFactory(code="TEAM", percent_off=Decimal("5"))
    lines = [f"p{n}@example.com,,,,,," for n in range(12)]
    bulk_list = paid_list(gifter, offer, lines, django_capture_on_commit_callbacks, coupon_code="team")
    order = Order.objects.get()
    # 12 x 10.00 = 120.00; the 10+ tier takes 12.00; the coupon 5 % of 108.00 = 5.40.
    assert (order.quantity, order.offer_price, order.discount_amount, order.total_price) == (
        12,
        Decimal("120.00"),
        Decimal("17.40"),
        Decimal("102.60"),
    )
    invoice = Invoice.objects.get()
    line = invoice.lines.get()
    assert (line.quantity, line.unit_amount, line.amount, invoice.total) == (
        12,
        Decimal("10.00"),
        Decimal("120.00"),
        Decimal("102.60"),
    )
    assert Payment.objects.filter(status="succeeded").count() == 1
    assert Transaction.objects.get().target_id == f"list-{bulk_list.pk}"
    coupon.refresh_from_db()
    assert coupon.redemptions == 1
    bulk_list.refresh_from_db()
    assert bulk_list.status == BulkList.Status.DONE and bulk_list.gifts_created == 12
    assert Gift.objects.filter(invoice=invoice).count() == 12


def test_a_list_with_problems_cannot_be_paid(gifter, offer):

    bulk_list = make_list(gifter, offer, csv_text("bad,,,,,,", "ok@example.com,,,,,,"))
    with pytest.raises(ServiceError, match="1 rows still have problems"):
        bulk_checkout(
            gifter=gifter, list_id=bulk_list.pk, payment_method=PaymentMethodFactory(customer=gifter, token="tok_visa")
        )
    assert not Order.objects.exists() and not Payment.objects.exists()


def test_a_declined_card_creates_nothing_and_the_list_stays_payable(gifter, offer):

    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,,,,"))
    with pytest.raises(PaymentError):
        bulk_checkout(gifter=gifter, list_id=bulk_list.pk, card_token="tok_chargeDeclined")
    bulk_list.refresh_from_db()
    assert bulk_list.status == BulkList.Status.DRAFT and not Gift.objects.exists() and not Invoice.objects.exists()


def test_a_list_changed_after_its_order_was_priced_refunds_the_charge(gifter, offer, monkeypatch):

    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,,,,", "b@example.com,,,,,,"))
    real_paid = bulk.bulk_list_paid

    def changed_meanwhile(**kwargs):  # another tab checked the list again between pricing and payment
        BulkList.objects.filter(pk=kwargs["list_id"]).update(revision=99)
        return real_paid(**kwargs)

    monkeypatch.setattr(bulk_sales.bulk, "bulk_list_paid", changed_meanwhile)
    with pytest.raises(ServiceError, match="changed while it was being paid"):
        bulk_sales.bulk_checkout(
            gifter=gifter, list_id=bulk_list.pk, payment_method=PaymentMethodFactory(customer=gifter, token="tok_visa")
        )
    assert Payment.objects.filter(kind="refund", status="succeeded").count() == 1
    assert not Gift.objects.exists()


# --- making the gifts ---------------------------------------------------------------------------------------------


def test_the_gifts_are_ordinary_scheduled_gifts_with_timeline_and_event_and_one_done_email(
    gifter, offer, django_capture_on_commit_callbacks
):
    lines = ["a@example.com,Ada,Hi Ada,2026-12-24,10:00,UTC,en", "b@example.com,,,,,,"]
    bulk_list = paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    gifts = list(Gift.objects.order_by("bulk_row__number"))
    assert [g.recipient_email for g in gifts] == ["a@example.com", "b@example.com"]
    assert gifts[0].status == GiftStatus.SCHEDULED and gifts[0].personal_note == "Hi Ada"
    assert gifts[0].scheduled_at == datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
    assert GiftTimeline.objects.filter(status="scheduled").count() == 2
    assert not BulkRow.objects.exclude(recipient_email="").exists()  # the gift holds the address now
    done = Email.objects.get(kind="bulk_done")
    assert done.order_id == bulk_list.order_id and done.to_email == "hr@example.com"
    assert not Email.objects.filter(kind="gift_receipt").exists()  # no receipt per gift
    sent = [m for m in mail.outbox if m.to == ["hr@example.com"]]
    assert len(sent) == 1 and "2 gifts of Premium monthly are ready" in sent[0].subject
    assert f"/account/gifts/lists/{bulk_list.pk}/" in sent[0].body


def test_a_redelivered_task_finds_nothing_to_do_and_sends_no_second_email(
    gifter, offer, settings, django_capture_on_commit_callbacks
):
    settings.BULK_BATCH_SIZE = 2  # three batches
    lines = [f"p{n}@example.com,,,,,," for n in range(5)]
    bulk_list = paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    assert Gift.objects.count() == 5
    assert bulk.bulk_gifts_create(list_id=bulk_list.pk) == (0, True)
    assert Gift.objects.count() == 5 and Email.objects.filter(kind="bulk_done").count() == 1


def test_a_run_cut_short_leaves_the_rest_to_the_next_run(gifter, offer, monkeypatch):
    bulk_list = make_list(gifter, offer, csv_text(*(f"p{n}@example.com,,,,,," for n in range(5))))
    order = Order.objects.create(
        customer=gifter, offer=offer, quantity=5, currency="USD", offer_price=50, total_price=50
    )
    BulkList.objects.filter(pk=bulk_list.pk).update(status="paid", order=order, paid_at=NOW, gifts_to_create=5)
    real = bulk._create_batch
    calls = []

    def dies_on_the_second_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(bulk, "_create_batch", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        bulk.bulk_gifts_create(list_id=bulk_list.pk, batch_size=2)
    assert Gift.objects.count() == 2  # the first batch committed, the second rolled back whole
    monkeypatch.setattr(bulk, "_create_batch", real)
    assert bulk.bulk_gifts_create(list_id=bulk_list.pk, batch_size=2) == (3, True)
    assert Gift.objects.count() == 5 and BulkRow.objects.filter(gift__isnull=True).count() == 0
    bulk_list.refresh_from_db()
    assert bulk_list.gifts_created == 5 and bulk_list.status == "done"


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_on_postgresql_share_the_rows_and_make_each_gift_once(gifter, offer):
    assert connection.vendor == "postgresql"
    bulk_list = make_list(gifter, offer, csv_text(*(f"p{n}@example.com,,,,,," for n in range(300))))
    order = Order.objects.create(
        customer=gifter, offer=offer, quantity=300, currency="USD", offer_price=3000, total_price=3000
    )
    BulkList.objects.filter(pk=bulk_list.pk).update(status="paid", order=order, paid_at=NOW, gifts_to_create=300)
    results, barrier = [], threading.Barrier(4)

    def run():
        try:
            barrier.wait()
            results.append(bulk.bulk_gifts_create(list_id=bulk_list.pk, batch_size=20))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(made for made, _ in results) == 300
    assert Gift.objects.count() == 300 and BulkRow.objects.filter(gift__isnull=True).count() == 0
    assert Email.objects.filter(kind="bulk_done").count() == 1
    bulk_list.refresh_from_db()
    assert bulk_list.gifts_created == 300


def test_a_list_gift_is_delivered_like_any_gift_without_a_delivered_notice_each(
    gifter, offer, django_capture_on_commit_callbacks
):
    lines = ["a@example.com,,,,,,", "b@example.com,,,,,,", "c@example.com,,,,,,"]
    paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert deliver_due_gifts() == 3
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com", "c@example.com"]
    assert not Email.objects.filter(kind="gift_delivered").exists()


# --- the web pages ------------------------------------------------------------------------------------------------


def test_upload_with_errors_then_fix_then_pay_then_progress_on_the_web(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    client.force_login(gifter)
    new_url = reverse("billing:bulk_new", args=[offer.long_id])
    with time_machine.travel(NOW, tick=True):
        text = csv_text("good@example.com,,,,,,", "broken,,,,,,", "=cmd@example.com,,,,,,")
        response = client.post(new_url, {"file": SimpleUploadedFile("team.csv", text.encode(), "text/csv")})
        assert response.status_code == 302
        review = response.url
        page = client.get(review).content.decode()
        assert "2 with problems" in page and "“broken” is not a valid email address." in page
        assert "Pay " not in page  # no payment while rows have problems
        bulk_list = BulkList.objects.get()
        rows = {row.number: row for row in bulk_list.rows.all()}
        response = client.post(
            review, {"action": "check", f"recipient_email-{rows[3].pk}": "fixed@example.com", "drop": [rows[4].pk]}
        )
        page = client.get(review).content.decode()
        assert "0 with problems" in page and "1 dropped" in page
        total = re.search(r'name="shown_total" value="([^"]+)"', page).group(1)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                review,
                {
                    "action": "pay",
                    "card_number": "4242424242424242",
                    "exp_month": "12",
                    "exp_year": "2030",
                    "shown_total": total,
                },
            )
        assert response.status_code == 302, response.content.decode()[:3000]
    page = client.get(response.url).content.decode()
    assert 'data-status="scheduled"' in page and "fixed@example.com" in page and "good@example.com" in page
    assert client.get(reverse("gifts:bulk_progress", args=[bulk_list.pk])).json() == {
        "status": "done", "created": 2, "total": 2, "percent": 100, "done": True,
    }  # fmt: skip
    gifts_page = client.get(reverse("gifts:gifts")).content.decode()
    assert f'id="list-{bulk_list.pk}"' in gifts_page and "gift-" not in re.sub(r'id="list-\d+"', "", gifts_page)


def test_a_bad_file_on_the_web_says_why(client, gifter, offer):
    client.force_login(gifter)
    data = "email\nzoë@example.com\n".encode("latin-1")
    response = client.post(
        reverse("billing:bulk_new", args=[offer.long_id]), {"file": SimpleUploadedFile("x.csv", data, "text/csv")}
    )
    assert response.status_code == 400 and "not UTF-8" in response.content.decode()
    assert not BulkList.objects.exists()


def test_pasted_rows_make_a_list(client, gifter, offer):
    client.force_login(gifter)
    response = client.post(reverse("billing:bulk_new", args=[offer.long_id]), {"rows": "email\na@example.com\n"})
    assert response.status_code == 302 and BulkRow.objects.get().recipient_email == "a@example.com"


def test_the_progress_page_refreshes_itself_without_javascript_while_gifts_are_made(client, gifter, offer):
    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,,,,"))
    order = Order.objects.create(
        customer=gifter, offer=offer, quantity=1, currency="USD", offer_price=10, total_price=10
    )
    BulkList.objects.filter(pk=bulk_list.pk).update(status="paid", order=order, paid_at=NOW, gifts_to_create=1)
    client.force_login(gifter)
    page = client.get(reverse("gifts:bulk_list", args=[bulk_list.pk])).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    assert '<progress id="progress-bar" max="1" value="0">' in page
    assert client.get(reverse("gifts:bulk_progress", args=[bulk_list.pk])).json()["done"] is False


def test_only_the_gifter_sees_a_list(client, gifter, offer):
    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,,,,"))
    client.force_login(CustomerFactory())
    assert client.get(reverse("billing:bulk_review", args=[bulk_list.pk])).status_code == 404
    assert client.get(reverse("gifts:bulk_progress", args=[bulk_list.pk])).status_code == 404
    assert client.get(reverse("gifts:bulk_export", args=[bulk_list.pk])).status_code == 404


def test_the_status_export_is_csv_with_formula_cells_neutralised(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    lines = ["a@example.com,Ada,,,,,", "b@example.com,,,,,,"]
    bulk_list = paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    Gift.objects.filter(recipient_email="a@example.com").update(recipient_first_name="=1+1")  # edited since
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        deliver_due_gifts()
    client.force_login(gifter)
    response = client.get(reverse("gifts:bulk_export", args=[bulk_list.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == bulk.EXPORT_HEADER
    assert rows[1][1:4] == ["a@example.com", "'=1+1", "sent"] and rows[2][3] == "sent"


def test_a_list_shows_which_gifts_were_opened_as_the_provider_reports_it(
    client, gifter, offer, django_capture_on_commit_callbacks
):
    lines = ["a@example.com,,,,,,", "b@example.com,,,,,,", "c@example.com,,,,,,"]
    bulk_list = paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        deliver_due_gifts()
    deliveries = Email.objects.filter(kind="gift_delivery")
    deliveries.filter(to_email="a@example.com").update(opened_at=NOW + timedelta(hours=1))
    deliveries.filter(to_email="b@example.com").update(clicked_at=NOW + timedelta(hours=2))  # images blocked
    client.force_login(gifter)

    export = client.get(reverse("gifts:bulk_export", args=[bulk_list.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    page = client.get(reverse("gifts:bulk_list", args=[bulk_list.pk])).content.decode()
    api = client.get(f"/mediastore/gift-lists/{bulk_list.pk}/gifts", HTTP_AUTHORIZATION=f"Bearer {issue_jwt(gifter)}")

    assert [row[3] for row in rows[1:]] == ["opened", "opened", "sent"]
    assert page.count('data-status="opened"') == 2 and page.count('data-status="sent"') == 1
    assert [item["status"] for item in api.json()["responseData"]["items"]] == ["opened", "opened", "sent"]
    assert bulk.bulk_list_counts(bulk_list) == {"opened": 2, "sent": 1}


def test_a_gifter_resends_one_delivered_gift_of_the_list(client, gifter, offer, django_capture_on_commit_callbacks):
    bulk_list = paid_list(gifter, offer, ["a@example.com,,,,,,"], django_capture_on_commit_callbacks)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        deliver_due_gifts()
    gift = Gift.objects.get()
    client.force_login(gifter)
    response = client.post(reverse("gifts:bulk_resend", args=[bulk_list.pk, gift.pk]))
    assert response.status_code == 302
    assert Email.objects.filter(gift=gift, kind="gift_delivery").count() == 2


def test_a_coupon_is_applied_to_the_lists_total_before_paying(client, gifter, offer):
    CouponFactory(code="TEAM", percent_off=Decimal("50"))
    bulk_list = make_list(gifter, offer, csv_text("a@example.com,,,,,,", "b@example.com,,,,,,"))
    client.force_login(gifter)
    review = reverse("billing:bulk_review", args=[bulk_list.pk])
    page = client.post(review, {"action": "price", "coupon": "team"}).content.decode()
    assert 'name="shown_total" value="10.00"' in page and 'value="team"' in page
    response = client.post(review, {"action": "price", "coupon": "NOPE"})
    assert response.status_code == 400 and "This coupon code is not valid." in response.content.decode()


def test_cancelling_one_gift_of_a_list_refunds_its_share_not_the_list(
    gifter, offer, django_capture_on_commit_callbacks
):

    lines = [f"p{n}@example.com,,,,,," for n in range(3)]
    paid_list(gifter, offer, lines, django_capture_on_commit_callbacks)
    first, second = Gift.objects.order_by("pk")[:2]
    gift_cancel(gift_id=first.pk, actor="admin")
    gift_cancel(gift_id=second.pk, actor="admin")
    refunds = Payment.objects.filter(kind="refund", status="succeeded")
    assert sorted(refunds.values_list("amount", flat=True)) == [Decimal("10.00"), Decimal("10.00")]
    invoice = Invoice.objects.get()
    assert (invoice.total, invoice.amount_refunded) == (Decimal("30.00"), Decimal("20.00"))
    assert Gift.objects.filter(status="cancelled").count() == 2 and Gift.objects.filter(status="scheduled").count() == 1


def test_resends_count_against_the_gifters_hourly_budget(
    client, gifter, offer, settings, django_capture_on_commit_callbacks
):
    settings.RECIPIENT_CHANGES_PER_HOUR = 2
    bulk_list = paid_list(gifter, offer, ["a@example.com,,,,,,"], django_capture_on_commit_callbacks)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        deliver_due_gifts()
    gift = Gift.objects.get()
    client.force_login(gifter)
    url = reverse("gifts:bulk_resend", args=[bulk_list.pk, gift.pk])
    for _ in range(3):
        client.post(url)
    assert Email.objects.filter(gift=gift, kind="gift_delivery").count() == 3  # the delivery and two resends
    other = make_list(gifter, offer, csv_text("x@example.com,,,,,,"))
    client.post(reverse("gifts:bulk_resend", args=[other.pk, gift.pk]))  # not on that list
    assert Email.objects.filter(gift=gift, kind="gift_delivery").count() == 3
