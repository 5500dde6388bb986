"""A gift's printable certificate (issue 16, "Hand it over yourself"): a one-page PDF in A4 or US Letter, in the gift's
design, with the offer, period, names, note, code, redeem-by date and a QR code of the redeem link. Checked the way a
person would: the PDF is rendered to an image with poppler's pdftoppm and the QR code read back with a decoder; its
text is read with pdftotext and its page size with pdfinfo."""

import io
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from accounts.tests.factories import CustomerFactory
from gifts.certificates import certificate_pdf
from gifts.emails import redeem_link
from gifts.models import Gift, GiftDesign, GiftStatus
from gifts.services import deliver_due_gifts
from gifts.tests.factories import GiftFactory, make_gift
from offers.tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

POPPLER = ("pdftoppm", "pdftotext", "pdfinfo", "pdfimages")


@pytest.fixture(autouse=True)
def designs(builtin_designs):
    """The built-in designs, made again for each test (gifts/tests/designs.py)."""


@pytest.fixture(autouse=True)
def poppler():
    missing = [tool for tool in POPPLER if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{', '.join(missing)} needed: apt-get install poppler-utils")


def _run(tool, pdf, *args):
    """`tool` (poppler) run on the PDF in a file of its own; its standard output."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "certificate.pdf"
        path.write_bytes(pdf)
        done = subprocess.run([tool, *args, str(path)], capture_output=True, timeout=60, check=True, cwd=folder)
        return done.stdout


def pdf_text(pdf):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "certificate.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdftotext", "-layout", str(path), str(path.with_suffix(".txt"))], check=True, timeout=60)
        return path.with_suffix(".txt").read_text()


def pdf_info(pdf):
    output = _run("pdfinfo", pdf).decode()
    return {name.strip(): value.strip() for name, value in (line.split(":", 1) for line in output.splitlines())}


def pdf_image(pdf, dpi=150):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "certificate.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(dpi), "-singlefile", str(path), str(Path(folder) / "page")],
            check=True,
            timeout=60,
        )
        return Image.open(Path(folder) / "page.png").convert("RGB")


def qr_codes(image):
    return [result.text for result in zxingcpp.read_barcodes(image) if result.format == zxingcpp.BarcodeFormat.QRCode]


@pytest.fixture
def gift():
    gifter = CustomerFactory(first_name="Ana", last_name="Lima")
    return make_gift(
        gifter=gifter,
        offer=OfferFactory(title="Cinema Monthly"),
        recipient_email="peter@example.com",
        recipient_first_name="Peter",
        personal_note="Happy birthday! Enjoy the films.",
        signature="Ana and Tom",
        scheduled_at=datetime(2026, 12, 24, 9, tzinfo=UTC),
        now=datetime(2026, 12, 1, 12, tzinfo=UTC),
        time_zone="Europe/Berlin",
    )


@pytest.mark.parametrize(("paper", "size"), [("a4", "595.276 x 841.89 pts (A4)"), ("letter", "612 x 792 pts (letter)")])
def test_the_certificate_is_one_page_of_the_paper_asked_for_with_everything_the_recipient_needs(gift, paper, size):
    pdf = certificate_pdf(gift, paper=paper)
    info = pdf_info(pdf)
    assert info["Pages"] == "1" and info["Page size"] == size
    text = " ".join(pdf_text(pdf).split())
    for expected in ("Peter", "Cinema Monthly", "Happy birthday! Enjoy the films.", "From Ana and Tom", gift.code):
        assert expected in text, expected
    assert f"Redeem it by {gift.claim_expiry_date.astimezone(gift.zone()):%-d %B %Y}" in text
    assert qr_codes(pdf_image(pdf)) == [redeem_link(gift)]


@pytest.mark.parametrize("slug", ["plain", "birthday", "holidays"])
def test_each_built_in_design_paints_its_own_colours_and_keeps_the_qr_code_readable(gift, slug):
    design = GiftDesign.objects.get(slug=slug)
    gift.design = design
    gift.save(update_fields=["design"])
    image = pdf_image(certificate_pdf(gift))
    background = tuple(int(design.background_colour[i : i + 2], 16) for i in (1, 3, 5))
    corner = image.getpixel((5, 5))
    assert all(abs(a - b) <= 2 for a, b in zip(corner, background, strict=True)), (corner, background)
    assert qr_codes(image) == [redeem_link(gift)]


def _png(colour, size=(120, 60)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "design.png"
    return buffer


def test_an_admin_adds_a_design_with_an_image_and_the_certificate_carries_it(admin_client, gift):
    response = admin_client.post(
        reverse("admin:gifts_giftdesign_add"),
        {
            "name": "Anniversary",
            "slug": "anniversary",
            "background_colour": "#fdf2f8",
            "text_colour": "#1a1a1a",
            "accent_colour": "#9d174d",
            "upload": _png("#9d174d"),
            "position": 5,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    design = GiftDesign.objects.get(slug="anniversary")
    assert design.image_type == "image/png" and bytes(design.image).startswith(b"\x89PNG")
    gift.design = design
    gift.save(update_fields=["design"])
    pdf = certificate_pdf(gift)
    images = _run("pdfimages", pdf, "-list").decode().splitlines()[2:]  # after the header and its rule
    assert len(images) == 1 and images[0].split()[3:5] == ["120", "60"]  # our image, whole
    assert qr_codes(pdf_image(pdf)) == [redeem_link(gift)]
    served = admin_client.get(reverse("gifts:design_image", args=["anniversary"]))
    assert served["Content-Type"] == "image/png" and served.content == bytes(design.image)


def test_the_admin_refuses_unreadable_colours_and_files_that_are_not_images(admin_client):
    form = {"name": "Pale", "slug": "pale", "background_colour": "#ffffff", "text_colour": "#dddddd"}
    form |= {"accent_colour": "#1f4e79", "position": 1}
    refused = admin_client.post(reverse("admin:gifts_giftdesign_add"), form)
    assert refused.status_code == 200 and "contrast ratio of 4.5:1" in refused.content.decode()
    script = io.BytesIO(b"<svg onload=alert(1)></svg>")
    script.name = "design.png"
    refused = admin_client.post(
        reverse("admin:gifts_giftdesign_add"), form | {"text_colour": "#1a1a1a", "upload": script}
    )
    assert refused.status_code == 200 and not GiftDesign.objects.filter(slug="pale").exists()


def test_only_the_gifter_gets_the_certificate_and_only_while_the_code_works(client, gift):
    url = reverse("gifts:certificate", args=[gift.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(CustomerFactory())
    assert client.get(url).status_code == 404  # another customer's gift
    client.force_login(gift.gifter)
    letter = client.get(f"{url}?paper=letter")
    assert letter.status_code == 200 and letter["Content-Type"] == "application/pdf"
    assert "no-cache" in letter["Cache-Control"] or "no-store" in letter["Cache-Control"]
    assert client.get(f"{url}?paper=A3").status_code == 400
    redeemed = GiftFactory(
        gifter=gift.gifter, status=GiftStatus.CLAIMED, receiver=CustomerFactory(), claimed_at=gift.created_at
    )
    gone = client.get(reverse("gifts:certificate", args=[redeemed.pk]))
    assert gone.status_code == 410 and "redeemed" in gone.content.decode()


def test_my_gifts_offers_the_certificate_for_gifts_whose_code_still_works(client, gift):
    redeemed = GiftFactory(
        gifter=gift.gifter, status=GiftStatus.CLAIMED, receiver=CustomerFactory(), claimed_at=gift.created_at
    )
    client.force_login(gift.gifter)
    page = client.get(reverse("gifts:gifts")).content.decode()
    assert reverse("gifts:certificate", args=[gift.pk]) + "?paper=a4" in page
    assert reverse("gifts:certificate", args=[redeemed.pk]) not in page


def test_the_longest_note_and_names_still_fit_one_letter_page(gift):
    gift.personal_note = ("Wishing you a year of wonderful stories. " * 7)[:255]
    gift.recipient_first_name = "Maximiliane-Alexandrine"
    gift.signature = "Everyone at the Lisbon office, with love"
    gift.save()
    for paper in ("a4", "letter"):
        pdf = certificate_pdf(gift, paper=paper)
        assert pdf_info(pdf)["Pages"] == "1", paper
        assert qr_codes(pdf_image(pdf)) == [redeem_link(gift)]


def _delivered_html(gift, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_gifts()
    (message,) = [m for m in mailoutbox if m.to == [gift.recipient_email]]
    return message.alternatives[0][0]


def test_the_delivery_email_wears_the_gifts_design(gift, mailoutbox, django_capture_on_commit_callbacks, time_machine):
    gift.design = GiftDesign.objects.get(slug="birthday")
    gift.save(update_fields=["design"])
    time_machine.move_to(gift.scheduled_at, tick=False)
    html = _delivered_html(gift, mailoutbox, django_capture_on_commit_callbacks)
    assert "background:#fff8e7" in html and "color:#a3320b" in html  # its background, and its accent on the code
    assert "/gifts/designs/" not in html  # a built-in design draws no image in an email


def test_a_designs_own_image_is_shown_by_its_address_and_a_batch_reads_each_design_once(
    gift, mailoutbox, django_capture_on_commit_callbacks, time_machine
):
    design = GiftDesign.objects.create(
        name="Team", slug="team", accent_colour="#9d174d", image=_png("#9d174d").read(), image_type="image/png"
    )
    others = [make_gift(gifter=gift.gifter, offer=gift.offer, scheduled_at=gift.scheduled_at) for _ in range(5)]
    Gift.objects.filter(pk__in=[gift.pk, *[g.pk for g in others]]).update(design=design)
    time_machine.move_to(gift.scheduled_at, tick=False)
    with CaptureQueriesContext(connection) as queries:
        html = _delivered_html(gift, mailoutbox, django_capture_on_commit_callbacks)
    assert f'src="{settings.SITE_URL}/gifts/designs/team/image"' in html
    reads = [q["sql"] for q in queries if 'FROM "gifts_giftdesign"' in q["sql"]]
    assert len(reads) == 1 and '"image"' not in reads[0]  # once for the six gifts, and without the image bytes
