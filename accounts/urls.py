from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views
from accounts.forms import ChangePasswordForm, ChoosePasswordForm, SetPasswordEmailForm

app_name = "accounts"
urlpatterns = [
    # Django's auth views, with our templates; LoginView and LogoutView check ?next= stays on this site.
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="billing:catalogue"), name="logout"),
    path("register/", views.register, name="register"),
    path("register/done/", views.register_done, name="register_done"),
    path("account/confirm/<uidb64>/<token>/", views.confirm_address, name="confirm_address"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            form_class=SetPasswordEmailForm, success_url=reverse_lazy("accounts:password_reset_done")
        ),
        name="password_reset",
    ),
    path("password-reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            form_class=ChoosePasswordForm, success_url=reverse_lazy("accounts:password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/", views.account, name="account"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            form_class=ChangePasswordForm,
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password_change_done",
    ),
    path("account/subscriptions/", views.subscriptions, name="subscriptions"),
    path("account/data/", views.personal_data, name="personal_data"),
    path("account/erase/", views.erase_request, name="erase_request"),
    path("account/erase/<uidb64>/<token>/", views.erase_confirm, name="erase_confirm"),
    path("account/transactions/", views.transactions, name="transactions"),
]
