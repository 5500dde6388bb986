"""SEC-8: failed typed codes from all clients together have one budget per window. Past it an alert is logged once,
typed codes are paused (429, even valid ones) on the API and the page, and the emailed link still redeems."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from gifts import services
from gifts.tests.factories import make_gift
from giftshop.mediastore import issue_jwt

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, 3, tzinfo=UTC)  # early in a 15-minute window
BUDGET, PAUSE = 500, 3600


@pytest.fixture(autouse=True)
def budget(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.GIFT_CODE_ATTEMPT_LIMIT = 10
    settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT = BUDGET
    settings.GIFT_CODE_GLOBAL_FAILURE_WINDOW = 15 * 60
    settings.GIFT_CODE_PAUSE_SECONDS = PAUSE


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def api_client(customer, ip):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(customer)}")
    return client


def delivered_gifts(count):
    gifts = [make_gift() for _ in range(count)]
    services.deliver_due_gifts(send=False)
    for gift in gifts:
        gift.refresh_from_db()
    return gifts


def botnet_guesses():
    """1,000 wrong codes from 1,000 addresses and 100 accounts: each address tries once and each account 10 times,
    so no per-client or per-account limit is ever reached."""
    accounts = [CustomerFactory() for _ in range(100)]
    statuses = []
    for n in range(1000):
        client = api_client(accounts[n % 100], ip=f"10.{n // 250}.{n % 250}.1")
        statuses.append(client.get(f"/mediastore/gifts/verification/ZZZZ-{n:04d}").status_code)
    return statuses


def security_errors(caplog):
    return [r for r in caplog.records if r.name == "giftshop.security" and r.levelno >= logging.ERROR]


def test_failures_from_a_thousand_addresses_past_the_global_budget_alert_once_and_pause_typed_codes(
    frozen, caplog, client
):
    api_gift, page_gift = delivered_gifts(2)
    with caplog.at_level(logging.WARNING, logger="giftshop.security"):
        statuses = botnet_guesses()
    # The failure that exceeds the budget is still answered (its look-up had run); every attempt after it is refused.
    assert statuses[: BUDGET + 1] == [404] * (BUDGET + 1)
    assert statuses[BUDGET + 1 :] == [429] * (1000 - BUDGET - 1)
    [alert] = security_errors(caplog)
    assert "501 failed gift-code attempts" in alert.getMessage() and "budget of 500" in alert.getMessage()

    # A valid typed code from a fresh address and account is refused too, before its look-up.
    response = api_client(CustomerFactory(), ip="192.0.2.10").post(f"/mediastore/gifts/redeem/{api_gift.code}")
    assert response.status_code == 429
    assert int(response["Retry-After"]) == PAUSE
    assert "link in your gift email" in response.json()["errors"][0]

    client.force_login(CustomerFactory())
    page = client.post(reverse("gifts:redeem"), {"code": page_gift.code, "action": "verify"}, REMOTE_ADDR="192.0.2.11")
    assert page.status_code == 429 and int(page["Retry-After"]) == PAUSE
    assert "link in your gift email" in page.content.decode()
    api_gift.refresh_from_db(), page_gift.refresh_from_db()
    assert (api_gift.status, page_gift.status) == ("unclaimed", "unclaimed")
    assert len(security_errors(caplog)) == 1  # once per window


def test_the_emailed_link_still_redeems_on_the_api_and_the_page_while_typed_codes_are_paused(frozen, client):
    api_gift, page_gift = delivered_gifts(2)
    botnet_guesses()
    response = api_client(CustomerFactory(), ip="192.0.2.20").post(f"/mediastore/gifts/redeem/{api_gift.link_token}")
    assert response.status_code == 200 and response.json()["responseData"]["redeemMode"] == "NEW"

    client.force_login(CustomerFactory())
    link = f"{reverse('gifts:redeem')}?giftCode={page_gift.code}&t={page_gift.link_token}"
    assert client.get(link).status_code == 200
    form = {"t": page_gift.link_token, "code": page_gift.code}
    verified = client.post(reverse("gifts:redeem"), {**form, "action": "verify"}, follow=True)
    assert verified.status_code == 200 and "Redeeming starts a new" in verified.content.decode()
    assert client.post(reverse("gifts:redeem"), {**form, "action": "confirm"}).status_code == 302
    api_gift.refresh_from_db(), page_gift.refresh_from_db()
    assert (api_gift.status, page_gift.status) == ("claimed", "claimed")


def test_a_wrong_link_token_during_the_pause_still_counts_against_its_client(frozen, settings):
    [gift] = delivered_gifts(1)
    botnet_guesses()
    settings.GIFT_CODE_ATTEMPT_LIMIT = 3
    client = api_client(CustomerFactory(), ip="192.0.2.30")
    forged = f"{gift.pk}.{'A' * 22}"
    assert [client.get(f"/mediastore/gifts/verification/{forged}").status_code for _ in range(4)] == [404] * 3 + [429]
    assert client.get(f"/mediastore/gifts/verification/{gift.link_token}").status_code == 429


def test_typed_codes_work_again_after_the_pause(frozen, caplog):
    [gift] = delivered_gifts(1)
    botnet_guesses()
    frozen.move_to(START + timedelta(seconds=PAUSE - 1), tick=False)
    client = api_client(CustomerFactory(), ip="192.0.2.40")
    assert client.get(f"/mediastore/gifts/verification/{gift.code}").status_code == 429

    frozen.move_to(START + timedelta(seconds=PAUSE + 1), tick=False)
    client = api_client(CustomerFactory(), ip="192.0.2.41")  # a fresh JWT: the last one expired meanwhile
    assert client.get(f"/mediastore/gifts/verification/{gift.code}").status_code == 200
    assert client.get("/mediastore/gifts/verification/ZZZZ-ZZZZ").status_code == 404


def test_the_admin_dashboard_says_typed_codes_are_paused(frozen, client):
    botnet_guesses()
    client.force_login(CustomerFactory(is_staff=True, is_superuser=True))
    body = client.get(reverse("admin:gifts_gift_dashboard")).content.decode()
    assert "Typed gift codes are paused for about 60 more minutes" in body
    assert "501 of the 500 allowed" in body
