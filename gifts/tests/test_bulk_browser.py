"""Gifts by the hundred (issue 18) in a real browser (Debian's Chromium under Playwright), against the live server:
a list uploaded with errors, fixed, paid, its progress bar followed (with and without JavaScript) and its emails
delivered; a group code of three seats redeemed by three accounts and refused to the fourth."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.tests.factories import CustomerFactory
from billing.bulk_sales import bulk_checkout
from billing.gateways import get_gateway
from gifts import bulk, group_codes, tasks
from gifts.models import BulkList, Gift
from gifts.services import deliver_due_gifts
from offers.tests.factories import OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def task_held(monkeypatch):
    """The creation task is not run at payment: the test makes the gifts itself, step by step, to watch them."""
    held = []
    monkeypatch.setattr(tasks.bulk_gifts_create, "delay", held.append)
    return held


def test_upload_with_errors_fix_pay_follow_the_progress_and_three_emails_go_out(browser_of, snap, task_held, tmp_path):
    offer = OfferFactory(title="Premium Streaming")
    gifter = CustomerFactory(email="hr@example.com")
    page = browser_of(gifter)
    page.goto(f"/offers/{offer.long_id}/")
    page.get_by_role("link", name="To a list of people").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Give Premium Streaming to a list of people")
    bad = tmp_path / "bad.csv"
    bad.write_bytes("email,name\nzoë@example.com,Zoë\n".encode("latin-1"))
    page.get_by_label("CSV file").set_input_files(str(bad))
    page.get_by_role("button", name="Check the list").click()
    expect(page.locator("#error-summary")).to_contain_text("This file is not UTF-8 text.")
    snap(page, "01-bad-file")

    team = tmp_path / "team.csv"
    team.write_text(
        "email,first_name,message\nada@example.com,Ada,Happy holidays!\nnot-an-address,Grace,\n"
        "linus@example.com,Linus,\nADA@example.com,Ada again,\n",
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(team))
    page.get_by_role("button", name="Check the list").click()
    expect(page.locator("#invalid-count")).to_have_text("2 with problems")
    expect(page.locator("#row-3")).to_contain_text("“not-an-address” is not a valid email address.")
    expect(page.locator("#row-5")).to_contain_text("Same address as line 2.")
    expect(page.get_by_role("button", name=re.compile(r"^Pay "))).to_have_count(0)
    snap(page, "02-report")
    page.get_by_label("Email, line 3").fill("grace@example.com")
    page.get_by_label("Drop line 5").check()
    page.get_by_role("button", name="Save and check again").click()
    expect(page.locator("#invalid-count")).to_have_text("0 with problems")
    expect(page.locator("#valid-count")).to_have_text("3 ready")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2030")
    snap(page, "03-ready-to-pay")
    page.get_by_role("button", name="Pay $29.97").click()

    expect(page).to_have_url(re.compile(r"/account/gifts/lists/\d+/$"))
    bulk_list = BulkList.objects.get()
    assert task_held == [bulk_list.pk] and bulk_list.status == "paid"
    expect(page.locator("#progress-created")).to_have_text("0")
    snap(page, "04-progress")
    bulk.bulk_gifts_create(list_id=bulk_list.pk, batch_size=1, max_batches=1)
    expect(page.locator("#progress-created")).to_have_text("1")  # the script polled
    assert page.locator("#progress-bar").evaluate("bar => bar.value") == 1
    bulk.bulk_gifts_create(list_id=bulk_list.pk)
    expect(page.locator("#done")).to_contain_text("All 3 gifts are ready")  # the script reloaded the page
    expect(page.locator("[data-status=scheduled]")).to_have_count(3)

    mail.outbox.clear()
    assert deliver_due_gifts() == 3
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "grace@example.com", "linus@example.com"]
    page.reload()
    expect(page.locator("[data-status=sent]")).to_have_count(3)
    snap(page, "05-sent")
    assert Gift.objects.filter(bulk_row__bulk_list=bulk_list).count() == 3


def test_the_progress_page_refreshes_itself_without_javascript(browser_of, task_held):
    offer = OfferFactory()
    gifter = CustomerFactory()
    bulk_list = bulk.bulk_list_create(gifter=gifter, offer=offer, source="email\na@example.com\nb@example.com\n")

    token = get_gateway().tokenize(number="4242424242424242", exp_month=12, exp_year=2030).token
    bulk_checkout(gifter=gifter, list_id=bulk_list.pk, card_token=token)
    page = browser_of(gifter, java_script_enabled=False)
    page.goto(f"/account/gifts/lists/{bulk_list.pk}/")
    expect(page.locator("#progress-created")).to_have_text("0")
    bulk.bulk_gifts_create(list_id=bulk_list.pk)
    expect(page.locator("#done")).to_be_visible(timeout=10_000)  # the <noscript> refresh, every 3 s


def test_a_group_code_of_three_seats_is_redeemed_by_three_accounts_and_refused_to_the_fourth(browser_of, snap):
    offer = OfferFactory(title="Premium Streaming")
    gifter = CustomerFactory(email="team-lead@example.com")
    group = group_codes.group_code_create(gifter=gifter, offer=offer, seats=3)
    people = [CustomerFactory(email=f"member{n}@example.com") for n in range(4)]
    for n, person in enumerate(people):
        page = browser_of(person)
        page.goto("/redeem/")
        page.get_by_label("Gift code").fill(group.code.lower())
        page.get_by_role("button", name="Verify").click()
        if n < 3:
            expect(page.locator("#seats-left")).to_have_text(f"{3 - n} (one per account)")
            page.get_by_role("button", name="Confirm and redeem").click()
            expect(page).to_have_url(re.compile(r"/redeem/done/\d+/$"))
        else:
            expect(page.locator("main")).to_contain_text("This gift code has already been redeemed.")
            snap(page, "refused-fourth")
    page = browser_of(gifter)
    page.goto(f"/account/gifts/groups/{group.pk}/")
    expect(page.locator("#seats-left")).to_have_text("0")
    for person in people[:3]:
        expect(page.locator("main")).to_contain_text(person.email)
    expect(page.locator("main")).not_to_contain_text(people[3].email)
    snap(page, "gifter-sees-who-redeemed")
