"""Right-to-left readiness (issue 17) in a real browser: with a right-to-left language added to the settings (Arabic,
for which the site has no catalogue: its text stays English, its direction does not), the pages are laid out from
the right, by the stylesheet's logical properties alone, and none of their main boxes overlap."""

import re

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from giftshop.tests import test_browser
from giftshop.tests.test_browser import DESKTOP, NEXT_FRAME, PHONE
from offers.tests.factories import OfferFactory

pytestmark = test_browser.pytestmark
persona, snap = test_browser.persona, test_browser.snap  # the browser tests' fixtures: a browser per person, shots

# Pairs of sibling boxes (the header's, its navigation's, the main column's and its lists', the footer's) that
# overlap by more than a pixel, as "<tag.class> / <tag.class>".
OVERLAPS = """() => {
  const boxes = parent => [...parent.children]
    .filter(child => child.offsetParent !== null && !child.matches('.skip, input[type=hidden]'))
    .map(child => [child, child.getBoundingClientRect()]);
  const name = element => element.tagName.toLowerCase() + (element.className ? '.' + element.className : '');
  const found = [];
  const parents = 'header, header nav, main, main ul, main dl, main form, footer, footer form';
  for (const parent of document.querySelectorAll(parents)) {
    const children = boxes(parent);
    children.forEach(([a, ra], i) => children.slice(i + 1).forEach(([b, rb]) => {
      const width = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const height = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (width > 1 && height > 1) found.push(name(a) + ' / ' + name(b));
    }));
  }
  return found;
}"""
# Where the brand (first in the header) and the navigation (last) are: right to left, the brand is on the right.
SIDES = """() => [document.querySelector('.brand').getBoundingClientRect().left,
                  document.querySelector('.site-header nav').getBoundingClientRect().left]"""


@pytest.fixture
def right_to_left(settings):
    """Arabic offered too (LANGUAGES_BIDI already names it right to left), chosen with the language cookie."""
    settings.LANGUAGES = [*django_settings.LANGUAGES, ("ar", "Arabic")]


@pytest.fixture
def reader(persona, live_server, right_to_left):
    page = persona()
    page.context.add_cookies([{"name": django_settings.LANGUAGE_COOKIE_NAME, "value": "ar", "url": live_server.url}])
    return page


def check_layout(page):
    for size in (PHONE, DESKTOP):
        page.set_viewport_size(size)
        page.evaluate(NEXT_FRAME)
        assert page.evaluate(OVERLAPS) == [], f"overlapping boxes at {size['width']}px wide"
    brand, nav = page.evaluate(SIDES)
    assert brand > nav, "right to left, the brand should be on the right of the navigation"


@pytest.mark.parametrize("path", ["/", "/redeem/"], ids=["catalogue", "redeem"])
def test_a_page_is_laid_out_right_to_left_without_overlap(reader, snap, path):
    OfferFactory(title="Premium Streaming", description="Every film and series, on every screen.")
    reader.goto(path)
    expect(reader.locator("html")).to_have_attribute("dir", "rtl")
    expect(reader.locator("html")).to_have_attribute("lang", "ar")
    check_layout(reader)
    snap(reader, "01-catalogue" if path == "/" else "01-redeem")


def test_the_language_switcher_works_from_the_keyboard(persona, snap):
    page = persona()
    page.goto("/redeem/")
    page.get_by_label("Language").focus()
    page.keyboard.press("End")  # the last language (Polski)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    expect(page).to_have_url(re.compile(r"/redeem/$"))  # back on the page it was chosen on
    snap(page, "01-polish")
