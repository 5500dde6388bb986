"""The admin's customer forms keep one account per address (the constraint is conditional on `duplicate_of`,
which the forms leave out, so they check it themselves): a clear error, never a 500."""

import pytest

from accounts.models import Customer
from accounts.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
INLINE = {"payment_methods-TOTAL_FORMS": "0", "payment_methods-INITIAL_FORMS": "0"}
PASSWORD = "x-Very-long-pass-42"


def test_adding_a_customer_with_a_taken_address_says_so(admin_client):
    CustomerFactory(email="taken@example.com")
    form = {"email": "Taken@Example.com", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}
    response = admin_client.post("/admin/accounts/customer/add/", {**form, **INLINE})
    assert response.status_code == 200 and "A customer with this email already exists." in response.content.decode()
    assert Customer.objects.filter(email__iexact="taken@example.com").count() == 1


def test_changing_a_customers_address_to_a_taken_one_says_so(admin_client):
    CustomerFactory(email="taken@example.com")
    customer = CustomerFactory(email="mine@example.com")
    page = admin_client.get(f"/admin/accounts/customer/{customer.pk}/change/")
    form = {name: value for name, value in page.context["adminform"].form.initial.items() if value is not None}
    form.update(email="TAKEN@example.com", date_joined_0="2026-01-01", date_joined_1="00:00:00", **INLINE)
    form.pop("groups", None), form.pop("user_permissions", None), form.pop("last_login", None)
    response = admin_client.post(f"/admin/accounts/customer/{customer.pk}/change/", form)
    assert response.status_code == 200 and "A customer with this email already exists." in response.content.decode()
    customer.refresh_from_db()
    assert customer.email == "mine@example.com"


def test_a_new_address_is_added_in_lower_case(admin_client):
    form = {"email": "New.Person@Example.com", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}
    response = admin_client.post("/admin/accounts/customer/add/", {**form, **INLINE})
    assert response.status_code == 302
    assert Customer.objects.filter(email="new.person@example.com").exists()
