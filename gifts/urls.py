from django.urls import path

from gifts import bulk_views, certificate_views, views

app_name = "gifts"
urlpatterns = [
    path("redeem/", views.redeem, name="redeem"),
    path("redeem/done/<int:gift_id>/", views.redeemed, name="redeemed"),
    path("redeem/decline/", views.decline, name="decline"),  # "No thanks" (issue 16)
    path("account/gifts/", views.gifts, name="gifts"),
    path("account/gifts/<int:gift_id>/edit/", views.gift_edit, name="gift_edit"),
    path("account/gifts/<int:gift_id>/recipient/", views.correct_recipient, name="correct_recipient"),
    path("account/gifts/<int:gift_id>/send-elsewhere/", views.send_elsewhere, name="send_elsewhere"),
    path("account/gifts/<int:gift_id>/certificate/", certificate_views.certificate, name="certificate"),
    path("account/gifts/<int:gift_id>/not-redeemed/", views.not_redeemed, name="not_redeemed"),
    path("gifts/designs/<slug:slug>/image", certificate_views.design_image, name="design_image"),
    # Bulk gift lists once paid (issue 18).
    path("account/gifts/lists/<int:list_id>/", bulk_views.bulk_list, name="bulk_list"),
    path("account/gifts/lists/<int:list_id>/progress/", bulk_views.bulk_progress, name="bulk_progress"),
    path("account/gifts/lists/<int:list_id>/export/", bulk_views.bulk_export, name="bulk_export"),
    path("account/gifts/lists/<int:list_id>/resend/<int:gift_id>/", bulk_views.bulk_resend, name="bulk_resend"),
    path("account/gifts/groups/<int:group_id>/", bulk_views.group_code, name="group_code"),
]
