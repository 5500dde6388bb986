"""Support's admin actions: resend, reissue and change the recipient go through the services, report each gift's
outcome, and leave an admin log entry and a gift event; reissuing asks first, shows the new codes once on a page of
their own and tells the gifter by email (never with the code); the undeliverable filter lists failed deliveries.
Cancelling (with its refund) is billing's action: billing/tests/test_admin_gift_cancel.py."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from emails.models import Email
from gifts import services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GuestFactory, make_gift
from gifts.tests.gift_admin import CHANGELIST, act, log_entries, shown
from gifts.verification import GiftNotFound, gift_verify
from giftshop.models import Event

pytestmark = pytest.mark.django_db

REISSUED = "admin:gifts_gift_reissued"


def delivered_gift(**fields):
    """A gift delivered to its recipient (`unclaimed`), with the delivery emails already out of mail.outbox."""
    gift = make_gift(auto_claim=False, **fields)
    services.deliver_due_gifts()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED
    mail.outbox.clear()
    return gift


def delivery_emails():
    return [message for message in mail.outbox if message.subject.startswith("You've received a gift")]


def code_notices():
    return [message for message in mail.outbox if message.subject == "The code of your gift has been replaced"]


def every_part(message):
    return message.body + "".join(content for content, _type in message.alternatives)


def updates(gift):
    return [event.content["comment"] for event in Event.objects.filter(gift=gift, event_type="gift_updated")]


def test_it_resends_the_delivery_email_to_the_recipient_with_the_same_code(
    staff_client, support_user, django_capture_on_commit_callbacks
):
    gift = delivered_gift(recipient_email="friend@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "resend_delivery", [gift])
        act(staff_client, "resend_delivery", [gift])

    emails = delivery_emails()
    assert [message.to for message in emails] == [["friend@example.com"], ["friend@example.com"]]
    assert all(gift.code in message.body for message in emails)
    keys = Email.objects.filter(gift=gift, key__contains="resend").order_by("pk").values_list("key", "status")
    assert list(keys) == [(f"gift:{gift.pk}:delivery:resend:1", "sent"), (f"gift:{gift.pk}:delivery:resend:2", "sent")]
    assert shown(response) == [
        f"Gift {gift.pk}: the delivery email is sent again to friend@example.com, with the same code."
    ]
    assert [entry.change_message for entry in log_entries(gift)] == ["Resent the delivery email."] * 2
    assert updates(gift) == [f"delivery email resent by admin:{support_user.email}"] * 2


def test_it_refuses_to_resend_a_gift_that_has_not_been_delivered_yet(staff_client, django_capture_on_commit_callbacks):
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "resend_delivery", [gift])

    assert shown(response) == [
        f"Gift {gift.pk}: not done. The gift has not been delivered yet;"
        " the recipient gets its email on the delivery date."
    ]
    assert not Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_DELIVERY).exists()
    assert delivery_emails() == []
    assert not log_entries(gift).exists()
    assert updates(gift) == []


def test_it_asks_before_reissuing_a_code(staff_client, django_capture_on_commit_callbacks):
    gift = delivered_gift(recipient_email="friend@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        page = act(staff_client, "reissue_code", [gift], follow=False)

    body = page.content.decode()
    assert page.status_code == 200
    assert "Yes, reissue the codes" in body and "friend@example.com" in body and gift.gifter.email in body
    assert gift.code not in body
    gift.refresh_from_db()
    assert Gift.objects.get(pk=gift.pk).code_nonce == gift.code_nonce  # not reissued
    assert mail.outbox == [] and not log_entries(gift).exists() and updates(gift) == []


def test_it_reissues_the_code_so_the_old_one_fails_and_shows_the_new_one_once(
    staff_client, support_user, django_capture_on_commit_callbacks
):
    gift = delivered_gift(recipient_email="friend@example.com")
    old_code, customer = gift.code, GuestFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "reissue_code", [gift], apply="yes")

    gift.refresh_from_db()
    new_code = gift.code
    assert new_code != old_code and gift.code_last4 == new_code[-4:]
    with pytest.raises(GiftNotFound) as not_found:
        gift_verify(customer=customer, code=old_code)
    assert not_found.value.status == 404
    assert gift_verify(customer=customer, code=new_code).redeemable

    # The code is on the one-time page, not in the message list; the page is never cached, and shown once.
    assert response.redirect_chain == [(reverse(REISSUED), 302)]
    assert shown(response) == [
        f"Gift {gift.pk}: the old code no longer works; the new code is shown below, this once."
        " It is emailed to the recipient."
    ]
    body = response.content.decode()
    assert new_code in body and "shown this once" in body
    assert "no-store" in response["Cache-Control"]
    again = staff_client.get(reverse(REISSUED)).content.decode()
    assert new_code not in again and "no longer available" in again
    assert new_code not in staff_client.get(reverse(CHANGELIST)).content.decode()

    [email] = delivery_emails()
    assert email.to == ["friend@example.com"]
    assert new_code in email.body and old_code not in email.body

    [entry] = log_entries(gift)
    assert (entry.change_message, entry.object_repr) == ("Reissued the code.", f"Gift {gift.pk} (••••-{new_code[-4:]})")
    assert updates(gift) == [f"code reissued by admin:{support_user.email}"]
    stored = json.dumps([event.content for event in Event.objects.filter(gift=gift)])
    assert new_code not in stored and old_code not in stored


def test_it_tells_the_gifter_once_per_reissue_and_never_the_code(staff_client, django_capture_on_commit_callbacks):
    gift = delivered_gift(recipient_email="friend@example.com")
    codes = [gift.code]
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            act(staff_client, "reissue_code", [gift], apply="yes")
        gift.refresh_from_db()
        codes.append(gift.code)

    notices = code_notices()
    assert [message.to for message in notices] == [[gift.gifter.email]] * 2
    assert "friend@example.com receives" not in notices[0].body  # delivered already: the recipient was emailed
    assert "We have emailed the new code to friend@example.com." in notices[0].body
    for message in notices:
        text = every_part(message)
        assert all(code not in text and code.replace("-", "") not in text for code in codes)
    assert Email.objects.filter(gift=gift, kind=Email.Kind.GIFT_CODE_REPLACED).count() == 2


def test_it_shows_no_code_to_staff_who_may_not_change_gifts(client, django_capture_on_commit_callbacks):
    gift = delivered_gift()
    viewer = GuestFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="gifts", codename="view_gift"))
    client.force_login(viewer)

    assert client.get(reverse(REISSUED)).status_code == 403
    act(client, "reissue_code", [gift], follow=False, apply="yes")
    assert Gift.objects.get(pk=gift.pk).code == gift.code


def test_it_reissues_a_scheduled_gifts_code_without_emailing_the_recipient(
    staff_client, django_capture_on_commit_callbacks
):
    gift = make_gift(scheduled_at=timezone.now() + timedelta(days=2))
    old_code, version = gift.code, gift.resource_version
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "reissue_code", [gift], apply="yes")

    gift.refresh_from_db()
    assert gift.code != old_code and gift.resource_version > version
    assert shown(response) == [f"Gift {gift.pk}: the old code no longer works; the new code is shown below, this once."]
    assert gift.code in response.content.decode()
    assert delivery_emails() == []
    [notice] = code_notices()
    assert "receives the new code on the delivery date" in notice.body and gift.code not in every_part(notice)


def test_it_changes_a_delivered_gifts_recipient_and_emails_the_same_code_to_the_new_address(
    staff_client, support_user, django_capture_on_commit_callbacks
):
    gift = delivered_gift(recipient_email="wrong@example.com")
    code, version = gift.code, gift.resource_version

    page = act(staff_client, "change_recipient", [gift], follow=False)
    assert page.status_code == 200
    assert "New recipient email" in page.content.decode() and "wrong@example.com" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "change_recipient", [gift], apply="yes", recipient_email=" Right@Example.com ")

    gift.refresh_from_db()
    assert (gift.recipient_email, gift.code) == ("right@example.com", code)
    assert gift.resource_version > version
    [email] = delivery_emails()
    assert email.to == ["right@example.com"] and code in email.body
    assert shown(response) == [
        f"Gift {gift.pk}: the recipient email is now right@example.com. The delivery email is sent again to it."
    ]
    [entry] = log_entries(gift)
    assert entry.change_message == "Changed the recipient email to right@example.com."
    assert updates(gift) == [f"recipient email changed by admin:{support_user.email}"]


def test_it_changes_a_scheduled_gifts_recipient_without_emailing_yet(staff_client, django_capture_on_commit_callbacks):
    gift = make_gift(recipient_email="wrong@example.com", scheduled_at=timezone.now() + timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client, "change_recipient", [gift], apply="yes", recipient_email="right@example.com")

    gift.refresh_from_db()
    assert gift.recipient_email == "right@example.com"
    assert delivery_emails() == []
    assert log_entries(gift).count() == 1


@pytest.mark.parametrize(
    "address", ["right@example.com\r\nBcc: everyone@example.com", "right@example.com\nX-Evil: 1", "not an email", ""]
)
def test_it_refuses_an_invalid_new_recipient_address_on_the_form(
    staff_client, address, django_capture_on_commit_callbacks
):
    gift = delivered_gift(recipient_email="wrong@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        page = act(staff_client, "change_recipient", [gift], apply="yes", recipient_email=address)

    assert page.status_code == 200
    assert page.context["form"].errors["recipient_email"]
    gift.refresh_from_db()
    assert gift.recipient_email == "wrong@example.com"
    assert delivery_emails() == []
    assert not log_entries(gift).exists()
    assert updates(gift) == []


def test_it_refuses_to_change_the_recipient_of_a_redeemed_gift(staff_client, django_capture_on_commit_callbacks):
    gift = delivered_gift(recipient_email="friend@example.com")
    services.gift_redeem(customer=GuestFactory(), code=gift.code)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff_client, "change_recipient", [gift], apply="yes", recipient_email="other@example.com")

    assert shown(response) == [f"Gift {gift.pk}: not done. The gift has already been redeemed."]
    gift.refresh_from_db()
    assert gift.recipient_email == "friend@example.com"
    assert delivery_emails() == []
    assert not log_entries(gift).exists()


def test_the_undeliverable_filter_lists_only_gifts_whose_delivery_email_failed(staff_client):
    failed, bounced, fine, corrected = (delivered_gift() for _ in range(4))
    Email.objects.filter(gift=failed, kind=Email.Kind.GIFT_DELIVERY).update(status=Email.Status.FAILED)
    Email.objects.filter(gift=bounced, kind=Email.Kind.GIFT_DELIVERY).update(status=Email.Status.BOUNCED)
    Email.objects.filter(gift=corrected, kind=Email.Kind.GIFT_DELIVERY).update(status=Email.Status.FAILED)
    services.gift_change_recipient(gift_id=corrected.pk, recipient_email="right@example.com", actor="test")
    only_the_receipt_failed = make_gift(scheduled_at=timezone.now() + timedelta(days=1))
    Email.objects.filter(gift=only_the_receipt_failed).update(status=Email.Status.FAILED)

    response = staff_client.get(reverse(CHANGELIST), {"undeliverable": "yes"})
    assert {gift.pk for gift in response.context["cl"].result_list} == {failed.pk, bounced.pk}
    everything = staff_client.get(reverse(CHANGELIST))
    assert "Delivery email failed or bounced" in everything.content.decode()
    assert len(everything.context["cl"].result_list) == 5
    assert fine.pk in {gift.pk for gift in everything.context["cl"].result_list}
