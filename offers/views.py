from django.shortcuts import render

from billing.views import has_access
from offers.selectors import offer_get, offer_list_on_sale


def catalogue(request):
    return render(request, "offers/catalogue.html", {"offers": offer_list_on_sale()})


def offer_detail(request, offer_id):
    offer = offer_get(offer_id, active_only=True)
    return render(
        request,
        "offers/offer_detail.html",
        {
            "offer": offer,
            "already_has_access": has_access(request.user, offer),
        },
    )
