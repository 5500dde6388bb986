"""CODE-R3: the emailed link carries a 128-bit token bound to its gift, apart from the typed code; it is not stored,
a tampered one is a failed guess, a reissued code voids it, and opening the link never redeems."""

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import CustomerFactory
from emails.models import Email
from gifts import emails as gift_emails
from gifts import services
from gifts.tests.factories import make_gift
from giftshop.mediastore import issue_jwt

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def api_client(ip="10.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_jwt(CustomerFactory())}")
    return client


def delivered(count=1):
    gifts = [make_gift() for _ in range(count)]
    services.deliver_due_gifts()
    for gift in gifts:
        gift.refresh_from_db()
    return gifts


def emailed_link(gift):
    [message] = [m for m in mail.outbox if m.to == [gift.recipient_email] and gift.code in m.body]
    [url] = [word for word in message.body.split() if "/redeem/?" in word]
    return message, parse_qs(urlsplit(url).query)


def test_the_delivery_email_links_with_a_128_bit_token_of_its_gift_and_still_shows_the_code():
    gift, other = delivered(2)
    message, query = emailed_link(gift)
    assert query["t"] == [gift.link_token] and query["giftCode"] == [gift.code]
    gift_id, mac = gift.link_token.split(".")
    assert int(gift_id) == gift.pk and len(base64.urlsafe_b64decode(mac + "==")) * 8 >= 128
    assert f"Your gift code: {gift.code}" in message.body
    assert gift.link_token.replace("-", "") not in emailed_link(other)[0].body

    client = api_client()
    assert client.get(f"/mediastore/gifts/verification/{gift.link_token}").json()["responseData"]["redeemable"]
    swapped = f"{other.pk}.{mac}"  # the token is bound to its gift: another gift's id does not go with it
    assert client.get(f"/mediastore/gifts/verification/{swapped}").status_code == 404


def test_the_claim_expiry_reminder_carries_the_same_link_and_code():
    [gift] = delivered()
    context = gift_emails.claim_expiring(Email(gift=gift, kind=Email.Kind.CLAIM_EXPIRING))
    assert context["code"] == gift.code
    assert parse_qs(urlsplit(context["redeem_link"]).query) == {"giftCode": [gift.code], "t": [gift.link_token]}


def test_a_tampered_token_is_refused_and_counts_as_a_failed_guess(settings):
    settings.GIFT_CODE_ATTEMPT_LIMIT = 4
    [gift] = delivered()
    token = gift.link_token
    last = "A" if token[-1] != "A" else "B"
    tampered = [token[:-1] + last, token[:-2], f"{gift.pk}.{'A' * 22}", f"{gift.pk + 1000}.{token.split('.')[1]}"]
    client = api_client()
    answers = [client.post(f"/mediastore/gifts/redeem/{forged}") for forged in tampered]
    assert [a.status_code for a in answers] == [404, 400, 404, 404]  # a 21-character MAC is no token: a bad code
    assert "link is not valid" in answers[0].json()["errors"][0]
    assert client.post(f"/mediastore/gifts/redeem/{token}").status_code == 429  # the client has used its attempts
    gift.refresh_from_db()
    assert gift.status == "unclaimed"


def test_reissuing_the_code_voids_the_old_link_and_emails_a_new_one(django_capture_on_commit_callbacks):
    [gift] = delivered()
    old_token = gift.link_token
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        gift = services.gift_reissue_code(gift_id=gift.pk, actor="test")
    assert gift.link_token != old_token
    assert emailed_link(gift)[1]["t"] == [gift.link_token]
    client = api_client()
    assert client.get(f"/mediastore/gifts/verification/{old_token}").status_code == 404
    assert client.post(f"/mediastore/gifts/redeem/{gift.link_token}").status_code == 200


def test_opening_the_link_never_redeems_and_the_login_comes_back_with_the_token(client):
    [gift] = delivered()
    url = f"{reverse('gifts:redeem')}?giftCode={gift.code}&t={gift.link_token}"
    body = client.get(url).content.decode()
    assert f"t%3D{gift.link_token}" in body  # the login link's `next`
    assert f'name="t" value="{gift.link_token}"' in body and 'value="claim"' in body  # a POST sets the password
    client.force_login(CustomerFactory())
    for _ in range(3):
        body = client.get(url).content.decode()
        assert f'name="t" value="{gift.link_token}"' in body and 'value="confirm"' in body
    gift.refresh_from_db()
    assert gift.status == "unclaimed"


def test_the_link_sets_a_password_only_for_the_address_it_was_emailed_to():
    [gift] = delivered()
    squatted = CustomerFactory(email=gift.recipient_email.upper(), email_verified_at=None)  # registered first
    client = Client()
    body = client.get(f"{reverse('gifts:redeem')}?t={gift.link_token}").content.decode()
    assert 'value="claim"' not in body  # the owner logs in (or asks for a password link), never a password here
    form = {"t": gift.link_token, "action": "claim", "password": "Violet marmalade 77 skyline"}
    assert client.post(reverse("gifts:redeem"), form).status_code == 409
    squatted.refresh_from_db()
    assert squatted.check_password("correct horse battery staple")
    gift.refresh_from_db()
    assert gift.status == "unclaimed"


def test_a_wrong_token_on_the_page_falls_back_to_the_typed_code(client):
    [gift] = delivered()
    client.force_login(CustomerFactory())
    forged = f"{gift.pk}.{'A' * 22}"
    response = client.post(reverse("gifts:redeem"), {"t": forged, "code": gift.code, "action": "confirm"})
    body = response.content.decode()
    assert response.status_code == 404 and "Type the code from your gift email" in body
    assert 'name="t"' not in body and f'value="{gift.code}"' in body
    gift.refresh_from_db()
    assert gift.status == "unclaimed"


def test_no_table_holds_a_link_token_or_a_code():
    gifts = delivered(3)
    secrets = [s for gift in gifts for s in (gift.link_token.split(".")[1], gift.code, gift.code.replace("-", ""))]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')  # noqa: S608 - names from the catalogue
            rows = " ".join(row for (row,) in cursor.fetchall())
            assert not [s for s in secrets if s in rows], table


def test_a_token_naming_no_gift_or_an_out_of_range_id_is_a_plain_not_found():
    client = api_client()
    for gift_id in ("1", "9999999999999999999"):
        response = client.get(f"/mediastore/gifts/verification/{gift_id}.{'A' * 22}")
        assert response.status_code == 404 and "link is not valid" in response.json()["errors"][0]
