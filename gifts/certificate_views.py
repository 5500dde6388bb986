"""The gifter's printable certificate of a gift (gifts/certificates.py), and a design's image for emails."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from gifts.certificates import IMAGE_TYPES, PAPERS, certificate_pdf
from gifts.models import GiftDesign, GiftStatus
from gifts.selectors import gift_for_gifter

# A certificate is worth printing while its code can still be redeemed.
PRINTABLE = {GiftStatus.SCHEDULED, GiftStatus.UNCLAIMED}


@require_GET
@login_required
@never_cache
def certificate(request, gift_id):
    """GET ?paper=a4|letter: the PDF, for the gift's gifter only (anyone else: 404). The gifter has the code already
    (their receipt email), so the certificate shows nothing new to them."""
    gift = gift_for_gifter(request.user, gift_id)
    paper = request.GET.get("paper", "a4").lower()
    if paper not in PAPERS:
        return HttpResponse(_("Choose the paper: a4 or letter."), status=400, content_type="text/plain; charset=utf-8")
    if gift.status not in PRINTABLE:
        message = _("This gift is %(status)s: its code can no longer be redeemed.") % {
            "status": gift.get_status_display().lower()
        }
        return HttpResponse(message, status=410, content_type="text/plain; charset=utf-8")
    response = HttpResponse(certificate_pdf(gift, paper=paper), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="gift-{gift.pk}-{paper}.pdf"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@cache_control(public=True, max_age=3600)
def design_image(request, slug):
    """A design's own image, for the emails that show it (images are kept in the database: no file storage)."""
    design = get_object_or_404(GiftDesign, slug=slug)
    if not design.image or design.image_type not in IMAGE_TYPES:
        raise Http404
    response = HttpResponse(bytes(design.image), content_type=design.image_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response
