"""Erasing a customer's personal data (issue 19, "People's data: erasure"): from the admin (after a confirmation
page) or at the customer's own request (confirmed by an emailed link). The account keeps a pseudonym and no way in;
the books keep every amount; gifts they gave still reach their recipients; gifts and emails to them lose their
address; everything in one transaction, once, with an audit record that holds no personal data."""

import io
import json
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core import mail
from django.db.models import Count, Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.erasure import customer_erase, is_erased_address
from accounts.models import Customer, ErasureRecord, RefreshToken, Subscription, Transaction
from accounts.personal_data import export
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory, SubscriptionFactory
from accounts.tests.test_sessions import api_login, reads_subscriptions, refresh, web_login
from billing import gift_sales
from billing import services as billing_services
from billing.models import Invoice, Order, Payment
from emails.models import Email
from emails.personal_data import NOT_SENT
from gifts import bulk
from gifts import services as gift_services
from gifts.models import BulkList, BulkRow, GiftStatus
from gifts.tests.factories import make_gift
from giftshop.errors import ServiceError
from giftshop.models import Event, IdempotencyRecord
from giftshop.services import api_key_create
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

ADDRESS = "ana.lima@example.com"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def ana():
    customer = CustomerFactory(email=ADDRESS, first_name="Ana", last_name="Lima", time_zone="Europe/Lisbon")
    PaymentMethodFactory(customer=customer, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    return customer


def erased(customer):
    return Customer.objects.get(pk=customer.pk)


def assert_nothing_of_ana_in(text):
    for trace in (ADDRESS, "Ana", "Lima"):
        assert trace.lower() not in text.lower(), trace


# --- the account ---------------------------------------------------------------------------------------------


def test_the_account_keeps_a_pseudonym_and_no_way_in(ana, client):
    client.force_login(ana)
    account_services.refresh_token_issue(customer=ana)
    held = SubscriptionFactory(customer=ana, auto_renew=True)  # nothing more is charged to an erased account

    record = customer_erase(customer=ana, requested_by="admin:1")

    after = erased(ana)
    assert is_erased_address(after.email) and after.email.startswith("erased-")
    assert (after.first_name, after.last_name, after.time_zone, after.country) == ("", "", "", "")
    assert not after.has_usable_password() and not after.is_active and after.erased_at == record.erased_at
    assert after.email_verified_at is None and after.last_login is None
    assert not after.payment_methods.exists() and not RefreshToken.objects.filter(customer=ana).exists()
    assert Subscription.objects.get(pk=held.pk).auto_renew is False
    assert client.get("/account/").status_code == 302  # the web session ended
    with pytest.raises(ServiceError):
        account_services.customer_login(email=ADDRESS, password=PASSWORD)
    assert_nothing_of_ana_in(json.dumps(export(after), default=str))
    # The address is free again: its owner may register anew.
    assert Customer.objects.create_user(ADDRESS, "another long passphrase").pk != ana.pk


def test_every_session_ends_storefront_and_web(ana):
    storefront, web = api_login(ana), web_login(ana)
    assert reads_subscriptions(ana, storefront["jwt"]) == 200

    customer_erase(customer=ana, requested_by="customer")

    assert reads_subscriptions(ana, storefront["jwt"]) == 401
    assert refresh(storefront["refreshToken"]).status_code == 401
    assert web.get("/account/").status_code == 302


def test_duplicate_registrations_of_the_address_are_erased_with_it(ana):
    duplicate = Customer.objects.create_user(ADDRESS, "a second long passphrase", duplicate_of=ana, first_name="Ana")

    customer_erase(customer=ana, requested_by="customer")

    owner, copy = erased(ana), erased(duplicate)
    assert copy.erased_at is not None and not copy.is_active and copy.first_name == ""
    assert is_erased_address(copy.email) and copy.email != owner.email
    assert ErasureRecord.objects.filter(customer=ana).count() == 1


def test_a_duplicate_erased_alone_leaves_its_accounts_address_everywhere(ana):
    duplicate = Customer.objects.create_user(ADDRESS, "a second long passphrase", duplicate_of=ana)
    gift = make_gift(recipient_email=ADDRESS)
    Email.objects.create(key="test:owners", kind=Email.Kind.SET_PASSWORD, to_email=ADDRESS)

    customer_erase(customer=duplicate, requested_by="admin:1")

    assert erased(ana).email == ADDRESS and erased(ana).erased_at is None
    gift.refresh_from_db()
    assert gift.recipient_email == ADDRESS
    assert Email.objects.get(key="test:owners").to_email == ADDRESS  # the owner's emails are theirs


def test_erasing_twice_erases_once(ana):
    first = customer_erase(customer=ana, requested_by="admin:1")
    pseudonym = erased(ana).email

    assert customer_erase(customer=erased(ana), requested_by="admin:2") is None
    assert erased(ana).email == pseudonym
    assert list(ErasureRecord.objects.values_list("pk", "requested_by")) == [(first.pk, "admin:1")]


def test_the_audit_record_holds_who_asked_and_when_but_no_personal_data(ana, caplog):
    caplog.set_level("INFO", logger="accounts.erasure")
    record = customer_erase(customer=ana, requested_by="customer")

    assert (record.customer_id, record.requested_by) == (ana.pk, "customer")
    assert f"personal data of customer {ana.pk} erased (requested by customer)" in caplog.text
    assert_nothing_of_ana_in(caplog.text + str(record))


def test_a_failing_part_erases_nothing(ana, settings):
    settings.PERSONAL_DATA_ERASERS = {**settings.PERSONAL_DATA_ERASERS, "broken": "accounts.tests.test_erasure.boom"}

    with pytest.raises(RuntimeError):
        customer_erase(customer=ana, requested_by="admin:1")

    assert erased(ana).email == ADDRESS and erased(ana).payment_methods.exists()
    assert not ErasureRecord.objects.exists()


def boom(erasure):
    raise RuntimeError("this part failed")


# --- the books -----------------------------------------------------------------------------------------------


def books():
    """Everything accounting reads: per currency the payments, refunds, ledger rows and invoice totals, and each
    invoice's number, customer and amounts."""
    payments = Payment.objects.values("kind", "status", "currency").annotate(n=Count("pk"), total=Sum("amount"))
    ledger = Transaction.objects.values("kind", "currency", "customer_id").annotate(n=Count("pk"), total=Sum("amount"))
    invoices = [
        (i.number, i.customer_id, i.currency, i.subtotal, i.discount, i.tax, i.total, i.amount_refunded, i.issued_at)
        for i in Invoice.objects.order_by("pk")
    ]
    orders = list(Order.objects.order_by("pk").values_list("pk", "customer_id", "total_price", "tax_value", "paid_at"))
    return sorted(map(repr, payments)), sorted(map(repr, ledger)), invoices, orders


def balances():
    """The books balance: what was charged less what was refunded is, per currency, both the ledger's net and the
    invoices' net."""
    net = {}
    for row in Payment.objects.filter(status=Payment.Status.SUCCEEDED):
        sign = 1 if row.kind == Payment.Kind.CHARGE else -1
        net.setdefault(row.currency, [Decimal(0)] * 3)[0] += sign * row.amount
    for row in Transaction.objects.all():
        net[row.currency][1] += -row.amount if row.kind == Transaction.Kind.REFUND else row.amount
    for invoice in Invoice.objects.filter(paid_at__isnull=False):
        net[invoice.currency][2] += invoice.total - invoice.amount_refunded
    return net


def test_the_books_keep_every_amount_and_still_balance(ana, django_capture_on_commit_callbacks):
    card = ana.payment_methods.get()
    bob = CustomerFactory()
    PaymentMethodFactory(customer=bob, token=f"tok_sandbox_success_{uuid.uuid4().hex[:12]}")
    with django_capture_on_commit_callbacks(execute=True):
        for buyer, offer in [(ana, OfferFactory(price="9.99")), (bob, OfferFactory(price="4.50", currency="USD"))]:
            billing_services.checkout(
                customer=buyer,
                offer=offer,
                checkout_key=uuid.uuid4().hex,
                as_gift=True,
                recipient_email="peter@example.com",
                personal_note="For you",
                signature=buyer.first_name,
                payment_method=buyer.payment_methods.get(),
            )
        sold = gift_sales.gift_purchase(
            gifter=ana,
            offer=OfferFactory(price="20.00"),
            receiver=None,
            recipient_email="zoe@example.com",
            idempotency_key=uuid.uuid4().hex,
        )
        gift_sales.gift_cancel(gift_id=sold.gift.pk)  # refunded in full
    assert Payment.objects.filter(kind=Payment.Kind.REFUND, status=Payment.Status.SUCCEEDED).count() == 1
    before, balanced = books(), balances()
    assert all(len(set(sides)) == 1 for sides in balanced.values()), balanced

    customer_erase(customer=ana, requested_by="admin:1")

    assert books() == before
    assert balances() == balanced
    assert Transaction.objects.filter(customer=ana).exclude(payment_method_label=card.label).count() == 0


# --- gifts ---------------------------------------------------------------------------------------------------


def test_a_gift_they_sent_still_reaches_its_recipient_from_someone(
    ana, time_machine, django_capture_on_commit_callbacks
):
    now = timezone.now()
    time_machine.move_to(now, tick=False)
    gift = make_gift(
        gifter=ana,
        recipient_email="peter@example.com",
        recipient_first_name="Peter",
        personal_note="Enjoy the films!",
        signature="Ana",
        scheduled_at=now + timedelta(days=3),
    )
    code, events_before = gift.code, Event.objects.filter(gift=gift).count()

    customer_erase(customer=ana, requested_by="customer")

    gift.refresh_from_db()
    assert (gift.status, gift.code, gift.personal_note, gift.scheduled_at) == (
        GiftStatus.SCHEDULED,
        code,
        "Enjoy the films!",
        now + timedelta(days=3),
    )
    assert (gift.recipient_email, gift.recipient_first_name, gift.signature) == ("peter@example.com", "Peter", "")
    assert gift.from_name == "Someone"
    assert Event.objects.filter(gift=gift).count() == events_before
    assert all("signature" not in e.content["gift"]["gifter"] for e in Event.objects.filter(gift=gift))

    mail.outbox.clear()
    time_machine.move_to(now + timedelta(days=3, minutes=1), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        gift_services.deliver_due_gifts()
    delivery = next(m for m in mail.outbox if m.to == ["peter@example.com"])
    assert "Someone has given you" in delivery.body and code in delivery.body and "Enjoy the films!" in delivery.body
    assert_nothing_of_ana_in(delivery.body + delivery.alternatives[0][0])

    peter = CustomerFactory(email="peter@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        gift_services.gift_redeem(customer=peter, code=code)
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CLAIMED and gift.receiver == peter

    # The gifter's notices ("delivered", "redeemed") are addressed to the pseudonym: never handed to the provider.
    assert not [m for m in mail.outbox if any(is_erased_address(to) for to in m.to)]
    notices = Email.objects.filter(gift=gift, kind__in=["gift_delivered", "gift_redeemed"])
    assert {e.kind for e in notices} == {"gift_delivered", "gift_redeemed"}
    assert {(e.status, e.last_error) for e in notices} == {(Email.Status.FAILED, NOT_SENT)}


def test_a_finished_gift_they_sent_keeps_no_note(ana):
    gift = make_gift(gifter=ana, personal_note="Love, Ana", signature="Ana")
    gift_services.deliver_due_gifts(send=False)
    gift_services.gift_redeem(customer=CustomerFactory(email="friend@example.com"), code=gift.code)

    customer_erase(customer=ana, requested_by="admin:1")

    gift.refresh_from_db()
    assert (gift.status, gift.personal_note, gift.signature) == (GiftStatus.CLAIMED, "", "")
    assert_nothing_of_ana_in(json.dumps([e.content for e in Event.objects.filter(gift=gift)]))


def test_gifts_they_received_lose_their_address_and_names(ana):
    redeemed = make_gift(recipient_email=ADDRESS, recipient_first_name="Ana", recipient_last_name="Lima")
    waiting = make_gift(recipient_email="Ana.Lima@Example.com", recipient_first_name="Ana")
    gift_services.deliver_due_gifts(send=False)
    gift_services.gift_redeem(customer=ana, code=redeemed.code)
    someone_elses = make_gift(recipient_email="peter@example.com")

    customer_erase(customer=ana, requested_by="admin:1")

    pseudonym = erased(ana).email
    for gift, status in [(redeemed, GiftStatus.CLAIMED), (waiting, GiftStatus.UNCLAIMED)]:
        gift.refresh_from_db()
        assert (gift.status, gift.recipient_email, gift.recipient_first_name, gift.recipient_last_name) == (
            status,
            pseudonym,
            "",
            "",
        )
    redeemed.refresh_from_db()
    assert redeemed.receiver_id == ana.pk and redeemed.subscription.customer_id == ana.pk
    someone_elses.refresh_from_db()
    assert someone_elses.recipient_email == "peter@example.com"
    events = Event.objects.filter(gift__in=[redeemed, waiting])
    assert events.exists()
    assert_nothing_of_ana_in(json.dumps([e.content for e in events]))
    assert {e.content["gift"]["gift_receiver"]["email"] for e in events} == {pseudonym}


def test_orders_keep_their_prices_but_not_the_delivery_details(ana, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        order = billing_services.checkout(
            customer=ana,
            offer=OfferFactory(),
            checkout_key=uuid.uuid4().hex,
            as_gift=True,
            recipient_email="peter@example.com",
            recipient_first_name="Peter",
            personal_note="For you",
            signature="Ana",
            payment_method=ana.payment_methods.get(),
        )
    addressed_to_ana = Order.objects.create(
        customer=CustomerFactory(),
        offer=OfferFactory(),
        currency="EUR",
        offer_price=Decimal("5.00"),
        total_price=Decimal("5.00"),
        buy_as_gift=True,
        recipient_email=ADDRESS,
        recipient_first_name="Ana",
    )

    customer_erase(customer=ana, requested_by="admin:1")

    order.refresh_from_db()
    assert (order.total_price, order.status) == (order.offer_price - order.discount_amount + order.tax_value, "paid")
    assert (order.recipient_email, order.personal_note, order.signature, order.recipient_first_name) == ("", "", "", "")
    addressed_to_ana.refresh_from_db()
    assert (addressed_to_ana.recipient_email, addressed_to_ana.recipient_first_name) == (erased(ana).email, "")


# --- the outbox ----------------------------------------------------------------------------------------------


def test_emails_to_them_are_readdressed_and_those_waiting_never_sent(ana):
    waiting = Email.objects.create(key="test:waiting", kind=Email.Kind.SET_PASSWORD, to_email=ADDRESS)
    bounced = Email.objects.create(
        key="test:bounced",
        kind=Email.Kind.SET_PASSWORD,
        to_email="ANA.LIMA@example.com",
        status=Email.Status.BOUNCED,
        last_error="bounced (ana.lima@example.com): mailbox full <ana.lima@example.com>",
    )
    other = Email.objects.create(key="test:other", kind=Email.Kind.SET_PASSWORD, to_email="peter@example.com")

    customer_erase(customer=ana, requested_by="admin:1")

    pseudonym = erased(ana).email
    waiting.refresh_from_db(), bounced.refresh_from_db(), other.refresh_from_db()
    assert (waiting.to_email, waiting.status, waiting.last_error) == (pseudonym, Email.Status.FAILED, NOT_SENT)
    assert bounced.to_email == pseudonym and bounced.status == Email.Status.BOUNCED
    assert "mailbox full" in bounced.last_error and "@" not in bounced.last_error
    assert (other.to_email, other.status) == ("peter@example.com", Email.Status.PENDING)


# --- the admin's action --------------------------------------------------------------------------------------


@pytest.fixture
def support(client):
    user = CustomerFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client, user


def test_support_erases_a_customer_after_a_confirmation_page(ana, support):
    client, user = support
    changelist = reverse("admin:accounts_customer_changelist")
    form = {"action": "erase_personal_data", "_selected_action": [ana.pk]}

    asked = client.post(changelist, form)
    assert asked.status_code == 200 and "Yes, erase their personal data" in asked.content.decode()
    assert ADDRESS in asked.content.decode() and erased(ana).erased_at is None

    done = client.post(changelist, {**form, "apply": "yes"}, follow=True)

    after = erased(ana)
    assert after.erased_at is not None and is_erased_address(after.email)
    assert [str(m) for m in done.context["messages"]] == [f"Customer {ana.pk}: personal data erased."]
    assert ErasureRecord.objects.get(customer=ana).requested_by == f"admin:{user.pk}"
    log = LogEntry.objects.get(object_id=str(ana.pk), content_type__model="customer")
    assert log.object_repr == after.email and log.get_change_message() == "Erased the personal data."

    again = client.post(changelist, {**form, "apply": "yes"}, follow=True)
    assert [str(m) for m in again.context["messages"]] == [f"Customer {ana.pk}: erased already."]
    audit = client.get(reverse("admin:accounts_erasurerecord_changelist")).content.decode()
    assert f"admin:{user.pk}" in audit and ADDRESS not in audit
    erased_list = client.get(changelist, {"erased_at__isnull": "False"}).content.decode()
    assert after.email in erased_list and user.email not in erased_list


def test_staff_who_may_only_view_customers_cannot_erase(ana, client):
    viewer = CustomerFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(viewer)
    changelist = reverse("admin:accounts_customer_changelist")
    assert client.get(changelist).status_code == 200
    form = {"action": "erase_personal_data", "_selected_action": [ana.pk], "apply": "yes"}
    client.post(changelist, form)
    assert erased(ana).erased_at is None


# --- the customer's own request ------------------------------------------------------------------------------


def confirm_link():
    """The path of the link in the (one) confirmation email."""
    (message,) = [m for m in mail.outbox if m.subject == "Confirm erasing your Giftshop account"]
    return re.search(r"/account/erase/[^/\s]+/[^/\s]+/", message.body).group(0)


def request_erasure(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:erase_request"))
    assert response.status_code == 302 and response.url == reverse("accounts:account")
    return confirm_link()


def test_a_customer_erases_their_account_with_the_link_emailed_to_them(ana, client, django_capture_on_commit_callbacks):
    client.force_login(ana)
    assert "Erase my account" in client.get(reverse("accounts:account")).content.decode()
    link = request_erasure(client, django_capture_on_commit_callbacks)
    assert erased(ana).erased_at is None  # asking erases nothing

    page = client.get(link)
    assert page.status_code == 200 and "Yes, erase my account" in page.content.decode()
    assert erased(ana).erased_at is None  # nor does opening the link

    done = client.post(link)

    assert done.status_code == 200 and "Your account is erased" in done.content.decode()
    assert erased(ana).erased_at is not None
    assert ErasureRecord.objects.get(customer=ana).requested_by == "customer"
    assert "_auth_user_id" not in client.session
    assert client.post(link).status_code == 400  # used: it erases nothing more


def test_the_link_works_without_a_session_too(ana, client, django_capture_on_commit_callbacks):
    client.force_login(ana)
    link = request_erasure(client, django_capture_on_commit_callbacks)
    elsewhere = Client()
    assert elsewhere.post(link).status_code == 200
    assert erased(ana).erased_at is not None


def test_a_wrong_or_expired_link_erases_nothing(
    ana, client, settings, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(ana)
    link = request_erasure(client, django_capture_on_commit_callbacks)
    wrong = link.rstrip("/")[:-3] + "abc/"
    assert client.get(wrong).status_code == 400 and client.post(wrong).status_code == 400

    time_machine.shift(timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 1))
    expired = client.get(link)
    assert expired.status_code == 400 and "This link has expired" in expired.content.decode()
    assert client.post(link).status_code == 400
    assert erased(ana).erased_at is None


def test_the_link_dies_with_a_password_change(ana, client, django_capture_on_commit_callbacks):
    client.force_login(ana)
    link = request_erasure(client, django_capture_on_commit_callbacks)
    account_services.customer_password_set(customer=ana, password="a brand new passphrase")
    assert Client().post(link).status_code == 400
    assert erased(ana).erased_at is None


def test_asking_needs_a_login_and_a_post(ana, client):
    assert client.post(reverse("accounts:erase_request")).status_code == 302  # to the login page
    client.force_login(ana)
    assert client.get(reverse("accounts:erase_request")).status_code == 405
    assert not Email.objects.filter(kind="erase_account").exists()


def test_asking_many_times_sends_one_email_an_hour(ana, client, django_capture_on_commit_callbacks):
    client.force_login(ana)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            client.post(reverse("accounts:erase_request"))
    assert Email.objects.filter(kind="erase_account", to_email=ADDRESS).count() == 1


def test_the_merchant_apis_stored_replies_name_the_pseudonym(ana):
    key, _raw = api_key_create(name="back office")
    body = json.dumps({"customer": {"id": str(ana.pk), "email": "Ana.Lima@example.com"}}).encode()
    record = IdempotencyRecord.objects.create(
        api_key=key, key="k1", method="POST", path="/x", fingerprint="f", body=body
    )

    customer_erase(customer=ana, requested_by="admin:1")

    record.refresh_from_db()
    assert json.loads(bytes(record.body)) == {"customer": {"id": str(ana.pk), "email": erased(ana).email}}


def test_a_member_of_staff_is_no_longer_named_where_they_changed_a_gift(ana):
    gift = make_gift(recipient_email="peter@example.com")
    gift_services.deliver_due_gifts(send=False)
    gift_services.gift_change_recipient(gift_id=gift.pk, recipient_email="paul@example.com", actor=f"admin:{ADDRESS}")
    gift_sales.gift_cancel(gift_id=gift.pk, actor=f"admin:{ADDRESS}")

    customer_erase(customer=ana, requested_by="admin:1")

    pseudonym = erased(ana).email
    assert gift.timeline.filter(actor=f"admin:{pseudonym}").exists()
    assert_nothing_of_ana_in(json.dumps([e.content for e in Event.objects.filter(gift=gift)]))
    assert not gift.timeline.filter(actor__icontains=ADDRESS).exists()


def test_their_unpaid_gift_lists_go_and_lines_addressed_to_them_lose_the_address(ana):
    from_ana = bulk.bulk_list_create(
        gifter=ana, offer=OfferFactory(), source=io.BytesIO(b"email,first_name\npeter@example.com,Peter\n"), name="a"
    )
    other = CustomerFactory(email="hr@example.com")
    to_ana = bulk.bulk_list_create(
        gifter=other, offer=OfferFactory(), source=io.BytesIO(f"email,first_name\n{ADDRESS},Ana\n".encode()), name="b"
    )
    group_order = billing_services.order_create(
        customer=ana, offer=OfferFactory(), buy_as_gift=True, checkout_key="group-1", quantity=3
    )
    note = {"kind": "group_code", "expires_at": None, "personal_note": "Welcome, Ana's team"}
    Order.objects.filter(pk=group_order.pk).update(fulfilment=note)  # as billing/bulk_sales.py leaves it unpaid

    customer_erase(customer=ana, requested_by="customer")

    assert not BulkList.objects.filter(pk=from_ana.pk).exists() and not BulkRow.objects.filter(bulk_list_id=from_ana.pk)
    (row,) = to_ana.rows.all()
    assert row.recipient_email == erased(ana).email and row.recipient_first_name == ""
    group_order.refresh_from_db()
    assert group_order.fulfilment == {"kind": "group_code", "expires_at": None, "personal_note": ""}
