"""Gift codes and link tokens never reach a log line: not Django's, not gunicorn's access log, not a worker's."""

import logging
import os
import re
import subprocess
import sys
import time
from contextlib import suppress
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

from accounts.tests.factories import CustomerFactory
from gifts.models import GiftStatus
from gifts.tests.factories import GiftFactory
from giftshop.logs import RedactSecrets, redact
from giftshop.mediastore import issue_jwt
from giftshop.tests.processes import free_port, stop_process


def test_it_masks_codes_in_the_redeem_links_query_and_in_the_storefront_paths():
    line = '127.0.0.1 "GET /redeem/?giftCode=ab12-CD34&t=42.AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1" 200'
    assert redact(line) == '127.0.0.1 "GET /redeem/?giftCode=••••-CD34&t=•••• HTTP/1.1" 200'
    assert redact("Not Found: /mediastore/gifts/redeem/7QX2%20K9PM") == "Not Found: /mediastore/gifts/redeem/••••-K9PM"
    verify = "GET /mediastore/gifts/verification/7QX2K9PM?x=1"
    assert redact(verify) == "GET /mediastore/gifts/verification/••••-K9PM?x=1"
    assert redact("nothing secret here: /offers/S100000001/") == "nothing secret here: /offers/S100000001/"
    html = '<a href="https://shop.example/redeem/?giftCode=7QX2-K9PM&amp;t=42.AAAAAAAAAAAAAAAAAAAAAA">'
    assert redact(html) == '<a href="https://shop.example/redeem/?giftCode=••••-K9PM&amp;t=••••">'  # an email's HTML
    search = '"GET /admin/gifts/gift/?q=7QX2-K9PM HTTP/1.1" 200'
    assert redact(search) == '"GET /admin/gifts/gift/?q=••••-K9PM HTTP/1.1" 200'  # the admin's whole-code search
    assert redact("GET /admin/gifts/gift/?q=robin%40example.com") == "GET /admin/gifts/gift/?q=robin%40example.com"
    back = "GET /pay/7/return/?payment_intent=pi_3Q&payment_intent_client_secret=pi_3Q_secret_AbC&redirect_status=x"
    assert redact(back) == "GET /pay/7/return/?payment_intent=pi_3Q&payment_intent_client_secret=••••&redirect_status=x"


def test_it_masks_a_code_written_out_anywhere_in_a_line():
    assert redact("GiftNotFound: no gift has the code 7QX2-K9PM") == "GiftNotFound: no gift has the code ••••-K9PM"
    assert redact("order 2026-12-05, key ABCI-EFGH") == "order 2026-12-05, key ABCI-EFGH"  # no I in a code
    assert redact("invoice INV-00012, uuid 1f0e2d3c-4b5a") == "invoice INV-00012, uuid 1f0e2d3c-4b5a"
    assert redact("card 4242-4242-4242-4242, key ABCD-EFGH-1234") == "card 4242-4242-4242-4242, key ABCD-EFGH-1234"


def test_the_filter_masks_a_records_arguments_and_its_traceback():
    args = ("/gifts/redeem/X",)
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", args, None)
    try:
        raise ValueError("while reading /redeem/?giftCode=AAAA-BBBB")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactSecrets().filter(record)
    assert record.getMessage() == "Not Found: /gifts/redeem/••••"
    assert "AAAA-BBBB" not in record.exc_text and "giftCode=••••-BBBB" in record.exc_text


def test_djangos_own_handlers_carry_the_filter():
    handler = logging.getLogger().handlers[0]
    assert any(isinstance(f, RedactSecrets) for f in handler.filters)


GUNICORN = [sys.executable, "-m", "gunicorn", "giftshop.wsgi"]


def _wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(requests.ConnectionError, FileNotFoundError):
            if condition():
                return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.real_broker
@pytest.mark.django_db(transaction=True)
def test_a_redeem_by_link_and_a_refused_api_redeem_leave_no_code_in_gunicorns_or_the_workers_logs(tmp_path):
    recipient = CustomerFactory(email="robin@example.com")
    recipient.password = make_password("correct horse battery", hasher=PBKDF2PasswordHasher())  # the servers' hasher
    recipient.save(update_fields=["password"])
    gift = GiftFactory(status=GiftStatus.UNCLAIMED, recipient_email=recipient.email)
    code, token = gift.code, gift.link_token

    database = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{settings.DATABASES['default']['NAME']}")
    env = {**os.environ, "DATABASE_URL": database.geturl(), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    env["STATIC_ROOT"] = str(tmp_path / "static")
    collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]  # the Procfile's release step
    subprocess.run(collect, cwd=settings.BASE_DIR, env=env, check=True, timeout=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    # Started as the Procfile starts them: gunicorn reads gunicorn.conf.py from the working directory.
    web = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-"],
        cwd=settings.BASE_DIR, env=env, stdout=web_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "giftshop", "worker", "--concurrency", "1", "--loglevel", "INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=worker_log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: requests.get(f"{base}/login/", timeout=5).ok), web_log.read_text()
        assert _wait_for(lambda: " ready." in worker_log.read_text()), worker_log.read_text()
        browser = requests.Session()
        browser.get(f"{base}/login/", timeout=10)
        csrf = browser.cookies["csrftoken"]
        form = {"csrfmiddlewaretoken": csrf, "username": recipient.email, "password": "correct horse battery"}
        assert browser.post(f"{base}/login/", data=form, timeout=10).ok
        link = f"{base}/redeem/?{urlencode({'giftCode': code, 't': token})}"
        assert browser.get(link, timeout=10).status_code == 200
        confirm = {"csrfmiddlewaretoken": browser.cookies["csrftoken"], "action": "confirm", "code": code, "t": token}
        redeemed = browser.post(f"{base}/redeem/", data=confirm, headers={"Referer": link}, timeout=10)
        assert "/redeem/done/" in redeemed.url
        api = {"Authorization": f"Bearer {issue_jwt(recipient)}"}
        refused = requests.post(f"{base}/mediastore/gifts/redeem/ZZZZ-{code[-4:]}", headers=api, timeout=10)
        assert refused.status_code == 404
        # The gifter's "your gift was redeemed" email goes out through the worker.
        assert _wait_for(lambda: "succeeded" in worker_log.read_text())
    finally:
        stop_process(web)
        stop_process(worker)
    logs = web_log.read_text() + worker_log.read_text()
    assert "/redeem/?giftCode=••••-" in logs and "t=••••" in logs  # the access log saw the link, masked
    assert "/mediastore/gifts/redeem/••••-" in logs  # and Django's "Not Found" warning
    for secret in (code, code.replace("-", ""), token, token.split(".")[1]):
        assert secret not in logs
    assert not re.search(rf"{code[:4]}-?{code[5:]}", logs)
