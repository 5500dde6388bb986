from django.shortcuts import render

from offers.selectors import offer_get, offer_list_on_sale


def catalogue(request):
    return render(request, "offers/catalogue.html", {"offers": offer_list_on_sale()})


def offer_detail(request, offer_id):
    return render(request, "offers/offer_detail.html", {"offer": offer_get(offer_id, active_only=True)})
