"""Browser fixtures shared by the gift tests that drive Chromium as a logged-in customer: `browser_of(customer)`
opens a page with that customer's session, and `snap(page, name)` takes phone and desktop screenshots, failing when
the phone layout scrolls sideways."""

import pytest
from django.conf import settings
from django.test import Client

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
NEXT_FRAME = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


@pytest.fixture
def browser_of(chromium, live_server):
    """`browser_of(customer)`: a browser (context) logged in as `customer`; its first page."""
    contexts = []

    def open_browser(customer, **options):
        client = Client()
        client.force_login(customer)
        session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
        context = chromium.new_context(base_url=live_server.url, viewport=DESKTOP, locale="en-GB", **options)
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": live_server.url}])
        contexts.append(context)
        return context.new_page()

    yield open_browser
    for context in contexts:
        context.close()


@pytest.fixture
def snap(screenshots):
    def both(page, name):
        page.set_viewport_size(PHONE)
        page.evaluate(NEXT_FRAME)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        screenshots(page, f"{name}-phone")
        assert overflow <= 0, f"{name}: the phone layout is {overflow}px wider than the screen"
        page.set_viewport_size(DESKTOP)
        page.evaluate(NEXT_FRAME)
        screenshots(page, f"{name}-desktop")

    return both
