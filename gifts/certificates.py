"""A gift's printable certificate: a one-page PDF (A4 or US Letter) in the gift's design, with the offer and its
period, the names, the personal note, the code, a QR code of the emailed redeem link and the redeem-by date, for a
gifter who hands the gift over in person. WeasyPrint lays it out from an HTML template (templates/gifts/
certificate.html); segno draws the QR code as SVG; nothing is fetched from outside (images are inlined)."""

import base64

import segno
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format

try:
    import weasyprint
    from weasyprint.urls import URLFetcher
except OSError as error:  # the system's Pango is missing: everything but certificates still works
    weasyprint, URLFetcher, MISSING = None, None, f"WeasyPrint cannot load the system's Pango ({error})"
else:
    MISSING = ""

from gifts.emails import redeem_link
from gifts.models import GiftDesign
from giftshop.i18n import language_of

PAPERS = {"a4": "A4", "letter": "letter"}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


def design_of(gift):
    return gift.design or GiftDesign.default()


def image_data_uri(design):
    """The design's own image as a data: URI ("" without one): inlined, so rendering fetches nothing."""
    if not design.image or design.image_type not in IMAGE_TYPES:
        return ""
    return f"data:{design.image_type};base64,{base64.b64encode(bytes(design.image)).decode()}"


def qr_svg(text):
    """A QR code of `text` as inline SVG, medium error correction (survives a crease or a smudge)."""
    return segno.make(text, error="m").svg_inline(scale=4, border=2, dark="#000000", light="#ffffff")


def certificate_context(gift, *, paper="a4"):
    design = design_of(gift)
    zone = gift.zone()
    expires = gift.claim_expiry_date
    link = redeem_link(gift)
    return {
        "gift": gift,
        "design": design,
        "image": image_data_uri(design),
        "artwork": f"gifts/designs/{design.slug}.svg" if design.builtin_artwork and not design.image else "",
        "paper": PAPERS.get(paper, "A4"),
        "offer": gift.offer,
        "recipient": gift.recipient_first_name,
        "from_name": gift.from_name,
        "code": gift.code,
        "qr": qr_svg(link),
        "redeem_at": link.split("?", 1)[0],
        "redeem_by": date_format(timezone.localtime(expires, zone), "DATE_FORMAT")
        if expires and not gift.no_expiry
        else "",
    }


def certificate_pdf(gift, *, paper="a4"):
    """The certificate as PDF bytes."""
    if weasyprint is None:
        raise ImproperlyConfigured(f"{MISSING}: apt-get install libpango-1.0-0 (README, Dependencies).")
    # In the recipient's language, the one the gifter chose for the gift (issue 17); none chosen: the gifter's own
    # (the page's they print it from).
    with translation.override(language_of(gift.language) if gift.language else translation.get_language()):
        html = render_to_string("gifts/certificate.html", certificate_context(gift, paper=paper))
    # Only data: URIs are read (the design's image, inlined): the layout can make no request, whatever the text says.
    return weasyprint.HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=("data",))).write_pdf()
