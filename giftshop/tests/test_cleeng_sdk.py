"""Cleeng's own front end against ours (issue 13): the components of `@cleeng/mediastore-sdk` 5.26.0 (pinned in
giftshop/tests/sdk/package.json) in Debian's Chromium, talking to pytest-django's live server.

The SDK has no setting for its API's address: `Config.setEnvironment` picks one of Cleeng's hosts, except
"development", whose base URL is empty, so the SDK calls `/customers`, `/orders`, … on the page's own origin. So the
test page is served at http://sdk.test/ (a made-up origin that Playwright answers: the page, its esbuild bundle), and
every other path there is forwarded to the live server's /mediastore/ — as a publisher's reverse proxy would. Every
call is logged (method, path, status) and none may fail unless a test says so. Nothing else leaves the browser:
requests to any other host (Cleeng's API and CDNs, Adyen, PayPal, Google, Mixpanel) are answered 204 by the page and
listed; Cleeng's API hosts must never be among them.

Screenshots of each component, and the log of the calls, land under $TEST_OUTPUT_DIR/screenshots/<test name>/.
"""

import os
import re
import subprocess
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services as account_services
from accounts.models import Customer
from accounts.tests.factories import CustomerFactory, PaymentMethodFactory
from billing.models import Order
from billing.tests.test_mediastore_orders import create_order, make_gift_order, pay
from gifts import services as gift_services
from gifts.models import Gift, GiftStatus
from gifts.tests.factories import GuestFactory, make_gift
from giftshop.mediastore import issue_jwt
from giftshop.tests.mediastore import client_for, data_of
from offers.tests.factories import CouponFactory, OfferFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SDK_DIR = Path(__file__).parent / "sdk"
ORIGIN = "http://sdk.test"
CLEENG_API_HOSTS = {"mediastoreapi.cleeng.com", "mediastoreapi-sandbox.cleeng.com"}
PASSWORD = "Violet marmalade 77 skyline"
DESKTOP = {"width": 1280, "height": 900}
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@pytest.fixture(scope="session")
def sdk_bundle(tmp_path_factory):
    """Bundles giftshop/tests/sdk/app.jsx with esbuild (under a second; no network): the page's files by path."""
    esbuild = SDK_DIR / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.fail("The SDK is not installed: npm ci --prefix giftshop/tests/sdk (bin/test does it).")
    build = tmp_path_factory.mktemp("sdk-build")  # not in the tree: sessions running side by side do not clash
    subprocess.run(
        [
            str(esbuild),
            "app.jsx",
            "--bundle",
            f"--outdir={build}",
            "--minify",
            "--log-level=warning",
            "--define:process.env.NODE_ENV='production'",
            *(f"--loader:.{ext}=dataurl" for ext in ("png", "svg", "gif", "woff", "woff2", "ttf")),
        ],
        cwd=SDK_DIR,
        check=True,
    )
    return {"/": SDK_DIR / "index.html", "/build/app.js": build / "app.js", "/build/app.css": build / "app.css"}


class SdkPage:
    """One person's browser with the SDK page: its calls to our API and the foreign requests it tried."""

    def __init__(self, context, live_server_url, files):
        self.context, self.api, self.files = context, f"{live_server_url}/mediastore", files
        self.calls, self.foreign, self.allowed_errors, self.stand_in_calls = [], [], set(), []
        self.stand_ins = {}  # path -> handler(route): what the test page answers itself instead of our API
        context.route("**/*", self._route)
        self.page = context.new_page()

    def _route(self, route):
        url = urlsplit(route.request.url)
        if url.scheme == "data":
            return route.continue_()
        if f"{url.scheme}://{url.netloc}" != ORIGIN:
            self.foreign.append(route.request.url)
            return route.fulfill(status=204, body="")
        if url.path in self.files:
            path = self.files[url.path]
            return route.fulfill(path=path, content_type=CONTENT_TYPES[path.suffix])
        if url.path.startswith("/cleeng-translations/"):  # the publisher's own wording: none, English it is
            return route.fulfill(status=200, content_type="application/json", body="{}")
        if url.path in self.stand_ins:
            return self.stand_ins[url.path](route)
        response = self.forward(route)
        return route.fulfill(response=response)

    def forward(self, route):
        """The publisher's reverse proxy: http://sdk.test/<path> is /mediastore/<path> of the live server."""
        url = urlsplit(route.request.url)
        response = route.fetch(url=f"{self.api}{url.path}" + (f"?{url.query}" if url.query else ""))
        self.calls.append((route.request.method, url.path, response.status))
        return response

    def open(self, component, **params):
        query = urlencode({"component": component, "publisherId": settings.GIFTSHOP_PUBLISHER_ID, **params})
        self.page.goto(f"{ORIGIN}/?{query}")
        return self.page

    def log_in_as(self, customer):
        """What a publisher's own login hands the SDK: the customer's JWT and refresh token."""
        return {"jwt": issue_jwt(customer), "refreshToken": account_services.refresh_token_issue(customer=customer)}

    def outcome(self):
        return self.page.get_by_role("list", name="Outcome")

    def log(self):
        calls = [f"{method} {path} -> {status}" for method, path, status in self.calls]
        stood_in = [f"{method} {path} (answered by the test page)" for method, path, _ in self.stand_in_calls]
        foreign = [f"{url} (answered 204 by the test page)" for url in self.foreign]
        return "\n".join(calls + stood_in + foreign)

    def check(self):
        """Every call the SDK made answered without an error, and nothing went to Cleeng."""
        log = self.log()
        print(f"SDK calls:\n{log}")
        failed = [c for c in self.calls if c[2] >= 400 and (c[0], c[1], c[2]) not in self.allowed_errors]
        assert not failed, f"calls that failed:\n{log}"
        assert "MSSDK:auth-failed" not in self.outcomes, "the SDK lost its session"
        assert not [u for u in self.foreign if urlsplit(u).hostname in CLEENG_API_HOSTS], self.foreign


@pytest.fixture
def sdk(chromium, live_server, sdk_bundle, screenshots, request):
    """`sdk(timezone_id=...)` opens a browser on the SDK page; each one's calls are checked at the end, and logged
    beside the test's screenshots (sdk-calls.txt)."""
    pages = []

    def open_browser(**options):
        context = chromium.new_context(viewport=DESKTOP, locale="en-US", **options)
        context.set_default_timeout(15_000)
        pages.append(SdkPage(context, live_server.url, sdk_bundle))
        return pages[-1]

    yield open_browser
    for sdk_page in pages:
        sdk_page.page.wait_for_load_state("networkidle")  # the last calls answered before the browser closes
        sdk_page.outcomes = sdk_page.page.locator("#outcome li").all_inner_texts()  # none on a page not the SDK's
        sdk_page.context.close()
    folder = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output")) / "screenshots" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sdk-calls.txt").write_text("\n\n".join(sdk_page.log() for sdk_page in pages) + "\n")
    for sdk_page in pages:
        sdk_page.check()


def api_customer(live_server_url, request_context, customer):
    """Calls our API as `customer` (what the test does where the SDK cannot: the payment)."""
    headers = {"Authorization": f"Bearer {issue_jwt(customer)}"}

    def call(method, path, body=None):
        response = request_context.fetch(
            f"{live_server_url}/mediastore{path}", method=method, data=body, headers=headers
        )
        assert response.ok, (path, response.status, response.text())
        return response.json()["responseData"]

    return call


def test_register_then_log_in(sdk, screenshots):
    browser = sdk()
    page = browser.open("Register")
    expect(page.get_by_label("Email")).to_be_visible()
    screenshots(page, "01-register")
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("I accept the Terms and Conditions.")).to_be_visible()  # the shop's terms, required
    page.get_by_role("checkbox").check()
    screenshots(page, "02-register-terms")
    page.get_by_role("button", name="Register").click()
    expect(browser.outcome()).to_contain_text("Register: registered")
    customer = Customer.objects.get(email="newcomer@example.com")
    assert customer.check_password(PASSWORD) and customer.locale == "en_US"

    browser = sdk()
    page = browser.open("Login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password")).to_be_visible()
    browser.allowed_errors.add(("POST", "/auths", 401))  # the wrong password, shown as the SDK's message
    screenshots(page, "03-login-wrong-password")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(browser.outcome()).to_contain_text("Login: logged in")
    screenshots(page, "04-logged-in")
    # The SDK keeps its session in localStorage, each key prefixed with the publisher id.
    stored = page.evaluate("Object.entries(localStorage).filter(([k]) => k.endsWith('CLEENG_CUSTOMER_ID'))")
    assert [value for _, value in stored] == [str(customer.pk)]


def test_password_reset_emails_the_owner(sdk, screenshots):
    customer = CustomerFactory(email="forgetful@example.com")
    browser = sdk()
    page = browser.open("PasswordReset")
    expect(page.get_by_label("Email")).to_be_visible()
    screenshots(page, "01-password-reset")
    page.get_by_label("Email").fill(customer.email)
    page.get_by_role("button", name="Reset Password").click()
    expect(browser.outcome()).to_contain_text("PasswordReset: reset requested")
    assert [m.to for m in mail.outbox] == [[customer.email]]
    assert ("PUT", "/customers/passwords", 200) in browser.calls


def fill_recipient_form(page, *, email, day, at, note):
    """The SDK's recipient form (its labels are not tied to its inputs: found by name)."""
    form = page.locator("form", has=page.locator("input[name=recipientEmail]"))
    expect(form).to_contain_text("Recipient email")
    form.locator("input[name=recipientEmail]").fill(email)
    form.locator("input[name=confirmRecipientEmail]").fill(email)
    form.locator("input[name=deliveryDate]").fill(day.isoformat())
    form.locator("input[name=deliveryTime]").fill(at)
    form.locator("textarea[name=message]").fill(note)


def stand_in_for_paypal(browser):
    """The payment providers the SDK knows (Adyen's drop-in, PayPal) cannot run here. The test page stands in for
    PayPal, the one that is plain SDK markup: it shows the SDK the publisher's payment method as PayPal (the SDK
    draws no other kind), and answers PayPal's token call with a redirect to a page of its own, where PayPal would
    take over. Up to that redirect the SDK does what it does for a real PayPal payment: it saves the gift's delivery
    details on the order."""

    def methods(route):
        response = browser.forward(route)
        body = response.json()
        body["responseData"]["paymentMethods"] = [
            {**method, "methodName": "paypal", "paymentGateway": "paypal"} if method["methodName"] == "card" else method
            for method in body["responseData"]["paymentMethods"]
        ]
        route.fulfill(response=response, json=body)

    def tokens(route):
        browser.stand_in_calls.append((route.request.method, "/connectors/paypal/v1/tokens", route.request.post_data))
        route.fulfill(json={"responseData": {"redirectUrl": f"{ORIGIN}/paypal"}, "errors": []})

    def paypal_page(route):
        route.fulfill(content_type="text/html", body="<!doctype html><title>PayPal</title><h1>PayPal (stand-in)</h1>")

    browser.stand_ins.update(
        {"/payment-methods": methods, "/connectors/paypal/v1/tokens": tokens, "/paypal": paypal_page}
    )


def test_purchase_as_a_gift_up_to_the_payment_provider(sdk, screenshots, live_server):
    """The gifter chooses "Purchase as a gift" and fills the SDK's recipient form (in New York time); the SDK saves
    the order's delivery details when the payment provider is chosen (PayPal, stood in for: see
    stand_in_for_paypal). The purchase stops there, and the order is paid through our API (POST /payments with
    the sandbox's "tok_visa" and the gifter's JWT), which makes the gift the browser described."""
    offer = OfferFactory(title="Premium Streaming", price=Decimal("9.99"), giftable=True)
    gifter = CustomerFactory(email="gifter@example.com", first_name="Ana", last_name="Lima")
    zone = ZoneInfo("America/New_York")
    day = timezone.now().astimezone(zone).date() + timedelta(days=5)
    note = "Happy birthday, Robin! Enjoy the films."
    browser = sdk(timezone_id="America/New_York")
    stand_in_for_paypal(browser)
    page = browser.open("Purchase", offerId=offer.short_id, **browser.log_in_as(gifter))
    expect(page.get_by_text(offer.title).first).to_be_visible()
    expect(page.get_by_role("button", name="Purchase as a gift")).to_be_enabled()
    screenshots(page, "01-purchase")

    page.get_by_role("button", name="Purchase as a gift").click()
    fill_recipient_form(page, email="robin@example.com", day=day, at="10:30", note=note)
    screenshots(page, "02-gift-details")

    page.locator(".msd__custom-dropin--wrapper button").click()
    expect(page.get_by_role("heading", name="PayPal (stand-in)")).to_be_visible()
    assert [call[:2] for call in browser.stand_in_calls] == [("POST", "/connectors/paypal/v1/tokens")]
    order = Order.objects.get(customer=gifter)
    assert order.offer == offer and order.buy_as_gift
    assert (order.recipient_email, order.personal_note) == ("robin@example.com", note)
    assert order.scheduled_at == datetime.combine(day, time(10, 30), tzinfo=zone)

    api = api_customer(live_server.url, browser.context.request, gifter)
    paid = api("POST", "/payments", {"orderId": order.pk, "paymentMethodId": 1, "cardToken": "tok_visa"})
    gift = Gift.objects.get(pk=paid["giftId"])
    assert gift.gifter == gifter and gift.offer == offer and gift.status == GiftStatus.SCHEDULED
    assert (gift.recipient_email, gift.personal_note) == ("robin@example.com", note)
    assert gift.scheduled_at == datetime.combine(day, time(10, 30), tzinfo=zone)


def gifter_with_history():
    """A customer who bought a plan for themselves and a gift for next week, with a saved card (through our API,
    as the tests of billing do)."""
    gifter = CustomerFactory(email="gifter@example.com", first_name="Ana", last_name="Lima")
    PaymentMethodFactory(customer=gifter, last4="4242", exp_month=12, exp_year=2030)
    own = OfferFactory(title="Basic Streaming", price=Decimal("4.99"), giftable=False)
    present = OfferFactory(title="Premium Streaming", price=Decimal("9.99"), period="year")
    client = client_for(gifter)
    data_of(pay(client, data_of(create_order(client, own.short_id))["order"]))
    order = data_of(create_order(client, present.short_id, buyAsAGift=True))["order"]
    when = int((timezone.now() + timedelta(days=7)).timestamp())
    make_gift_order(client, order, recipientEmail="robin@example.com", deliveryDate=when, personalNote="Enjoy!")
    gift = Gift.objects.get(pk=data_of(pay(client, order))["giftId"])
    return gifter, gift


def test_my_account_plans_payments_gift_delivery_and_profile(sdk, screenshots):
    gifter, gift = gifter_with_history()
    browser = sdk(timezone_id="Europe/Berlin")
    page = browser.open("MyAccount", **browser.log_in_as(gifter))
    expect(page.get_by_text("Ana Lima")).to_be_visible()
    current_plan = page.get_by_role("article").filter(has=page.get_by_role("heading", name="Basic Streaming"))
    expect(current_plan).to_contain_text("Renews automatically on")
    screenshots(page, "01-plan-details")

    page.get_by_text("Your Payments").click()
    expect(page.get_by_role("figure", name="Visa")).to_be_visible()
    expect(page.locator("time", has_text="12/2030")).to_be_visible()
    expect(page.get_by_text("(**** 4242)")).to_be_visible()
    history = page.get_by_role("listitem")
    expect(history).to_have_count(2)
    expect(history.first.get_by_role("heading")).to_have_text("Premium Streaming")  # the gift
    expect(history.last.get_by_role("heading")).to_have_text("Basic Streaming")
    screenshots(page, "02-payments")
    history.first.get_by_role("button", name="Edit gift delivery details").click()
    form = page.locator("form", has=page.locator("input[name=recipientEmail]"))
    expect(form.locator("input[name=recipientEmail]")).to_have_value("robin@example.com")
    expect(form.locator("textarea[name=message]")).to_have_value("Enjoy!")
    screenshots(page, "03-edit-gift-delivery")
    form.locator("input[name=recipientEmail]").fill("robin.new@example.com")
    form.locator("input[name=confirmRecipientEmail]").fill("robin.new@example.com")
    page.get_by_role("button", name=re.compile("Save|Update", re.I)).click()
    expect(page.get_by_text("Delivery Details Updated")).to_be_visible()
    screenshots(page, "04-gift-delivery-saved")
    gift.refresh_from_db()
    assert gift.recipient_email == "robin.new@example.com" and gift.personal_note == "Enjoy!"
    assert ("PATCH", f"/gifts/{gift.pk}", 200) in browser.calls

    page = browser.open("MyAccount", **browser.log_in_as(gifter))
    page.get_by_text("Update Profile").click()
    expect(page.locator("input[value='gifter@example.com']")).to_be_visible()
    expect(page.get_by_text("I accept the Terms and Conditions.")).to_be_visible()
    screenshots(page, "05-profile")
    page.get_by_role("button", name="Edit Profile").click()
    page.locator("input[value='Ana']").fill("Anna")
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.url.endswith(f"/customers/{gifter.pk}")):
        page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("button", name="Edit Profile")).to_be_visible()
    screenshots(page, "06-profile-saved")
    gifter.refresh_from_db()
    assert (gifter.first_name, gifter.last_name) == ("Anna", "Lima")


@pytest.mark.parametrize(
    "component, shows",
    [
        ("PlanDetails", "Renews automatically on"),
        ("PaymentInfo", "(**** 4242)"),
        ("TransactionList", "Edit gift delivery details"),
        ("UpdateProfile", "I accept the Terms and Conditions."),
    ],
)
def test_my_accounts_parts_alone_with_an_expired_jwt(sdk, screenshots, component, shows):
    """Each part of MyAccount embedded on its own, as a publisher may. The JWT handed over has expired: the SDK
    first trades the refresh token for a new pair (POST /auths/refresh_token), once."""
    gifter, _ = gifter_with_history()
    browser = sdk()
    tokens = browser.log_in_as(gifter)
    tokens["jwt"] = issue_jwt(gifter, now=timezone.now() - timedelta(minutes=20))
    page = browser.open(component, **tokens)
    expect(page.get_by_text(shows).first).to_be_visible()
    screenshots(page, component)
    assert [call for call in browser.calls if call[1] == "/auths/refresh_token"] == [
        ("POST", "/auths/refresh_token", 200)
    ]


def test_redeem_a_delivered_gift(sdk, screenshots):
    offer = OfferFactory(title="Premium Streaming", period="month")
    recipient = CustomerFactory(email="robin@example.com", first_name="Robin")
    gift = make_gift(gifter=GuestFactory(first_name="Ana"), offer=offer, recipient_email=recipient.email)
    gift_services.deliver_due_gifts()
    gift.refresh_from_db()
    assert gift.status == GiftStatus.UNCLAIMED

    browser = sdk(timezone_id="Asia/Tokyo")
    page = browser.open("RedeemGift", giftCode=gift.code, **browser.log_in_as(recipient))
    code_field = page.locator("input[name=giftCode]")
    expect(code_field).to_have_value(gift.code)  # from ?giftCode=, as the gift email's link carries it
    confirm = page.get_by_role("button", name="Confirm & proceed")
    expect(confirm).to_be_disabled()
    screenshots(page, "01-redeem-gift")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Premium Streaming").first).to_be_visible()
    expect(confirm).to_be_enabled()
    screenshots(page, "02-verified")
    assert Gift.objects.get(pk=gift.pk).status == GiftStatus.UNCLAIMED  # verifying redeems nothing

    confirm.click()
    expect(page.get_by_text(re.compile("Thank you|Enjoy|success", re.I)).first).to_be_visible()
    screenshots(page, "03-thank-you")
    expect(browser.outcome()).to_contain_text("RedeemGift: redeemed")
    gift.refresh_from_db()
    assert gift.status == GiftStatus.CLAIMED
    assert recipient.subscriptions.get().offer == offer
    assert [call[:2] for call in browser.calls if call[1].startswith("/gifts/")] == [
        ("GET", f"/gifts/verification/{gift.code}"),
        ("POST", f"/gifts/redeem/{gift.code}"),
    ]


def test_a_free_order_is_completed_in_the_sdk(sdk, screenshots):
    """A full discount needs no payment: the SDK applies the coupon, chooses the publisher's "coupon" method, and its
    "Complete purchase" pays the order with POST /payments {orderId} alone. (It draws that button only where it
    sees a payment provider too, so PayPal is stood in for here as well.)"""
    offer = OfferFactory(title="Premium Streaming", price=Decimal("9.99"))
    CouponFactory(code="ALLFREE", discount_type="percent", percent_off=Decimal("100"))
    customer = CustomerFactory(email="lucky@example.com")
    browser = sdk()
    stand_in_for_paypal(browser)
    page = browser.open("Purchase", offerId=offer.short_id, couponCode="ALLFREE", **browser.log_in_as(customer))
    complete = page.get_by_role("button", name="Complete purchase")
    expect(complete).to_be_visible()
    expect(page.get_by_text("After a month you will be charged a regular price of $9.99.")).to_be_visible()
    screenshots(page, "01-free-order")
    complete.click()
    expect(browser.outcome()).to_contain_text("Purchase: purchased")
    screenshots(page, "02-purchased")
    assert customer.subscriptions.get().offer == offer
    order = Order.objects.get(customer=customer)
    assert order.total_price == 0 and order.coupon.code == "ALLFREE"
    assert ("POST", "/payments", 200) in browser.calls and not browser.stand_in_calls  # PayPal never called
