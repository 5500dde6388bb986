"""Traceable logs and scrubbed error reports: every request gets a request id (the caller's when sane), its log lines
carry it (and the gift id where there is one), JSON lines are what a log pipeline wants, tasks carry the publishing
request's id in their headers; Sentry events leave with no code, token, card data or note in them."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
import sentry_sdk
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from sentry_sdk.transport import Transport

from giftshop import sentry, tracing
from giftshop.celery import app
from giftshop.logs import ContextFilter, JsonFormatter, PlainFormatter, RedactSecrets, bind, current

CODE, CARD = "7QX2-K9PM", "4242 4242 4242 4242"


def boom(request):
    logging.getLogger("gifts.views").warning("looking up %s", request.get_full_path(), extra={"gift_id": 41})
    if request.method == "POST":
        raise ValueError(f"no gift {CODE} for card {CARD} (note: {request.POST.get('note')})")
    return HttpResponse("ok")


urlpatterns = [path("boom/", boom)]


@pytest.fixture
def log_lines():
    """What the root logger writes through a handler configured as settings.LOGGING's (redaction, context, JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.mark.urls(__name__)
def test_a_request_gets_an_id_its_lines_carry_with_the_gift_id_and_the_response_names_it(log_lines):
    response = Client().get(f"/boom/?giftCode={CODE}")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    (line,) = [line for line in log_lines() if line["logger"] == "gifts.views"]
    assert line["request_id"] == request_id and line["gift_id"] == 41
    assert line["level"] == "WARNING" and line["message"] == "looking up /boom/?giftCode=••••-K9PM"
    assert line["timestamp"].endswith("+00:00")
    assert current() == {}  # nothing left bound after the request


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("lb-7f3a9c2e41d0", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("short", False),
        ("x" * 129, False),
        ("spaces are not ids", False),
        ('quote"injection', False),
    ],
)
def test_a_callers_request_id_is_kept_only_when_it_cannot_forge_a_log_line(given, kept):
    answered = Client().get("/boom/", headers={"X-Request-ID": given})["X-Request-ID"]
    assert (answered == given) is kept
    if not kept:
        assert len(answered) == 32


def test_a_json_line_is_one_object_with_its_traceback_redacted(log_lines):
    try:
        raise RuntimeError(f"while reading /redeem/?giftCode={CODE}&t=42.secretsecretsecret")
    except RuntimeError:
        with bind(request_id="req-0123456789"):
            logging.getLogger("gifts.tasks").exception("failed")
    (line,) = log_lines()
    assert line["request_id"] == "req-0123456789" and "gift_id" not in line
    assert "RuntimeError" in line["exc_info"] and "giftCode=••••-K9PM&t=••••" in line["exc_info"]
    assert CODE not in json.dumps(line) and "secretsecret" not in json.dumps(line)


def test_the_plain_format_shows_the_request_id_when_there_is_one():
    record = logging.LogRecord("gifts", logging.INFO, __file__, 1, "gift %s redeemed", (7,), None)
    formatter = PlainFormatter("%(levelname)s %(name)s %(message)s%(context)s")
    with bind(request_id="req-0123456789"):
        ContextFilter().filter(record)
    assert formatter.format(record) == "INFO gifts gift 7 redeemed [req-0123456789]"
    bare = logging.LogRecord("gifts", logging.INFO, __file__, 1, "beat started", (), None)
    ContextFilter().filter(bare)
    assert formatter.format(bare) == "INFO gifts beat started"


@app.task(name="giftshop.tests.request_id_of_this_run", bind=True)
def request_id_of_this_run(self):
    return current().get("request_id"), current().get("task")


def test_a_task_published_inside_a_request_carries_its_id_and_runs_with_it():
    """Through the signals, as a worker runs them: before_task_publish writes the header, task_prerun binds it."""
    headers = {}
    with bind(request_id="req-0123456789"):
        tracing.task_published(headers=headers)
    assert headers == {tracing.TASK_HEADER: "req-0123456789"}
    # .result, not .get(): an eager result asks whether it is inside a task, which an earlier test's run may leave
    result = request_id_of_this_run.apply(headers=headers)
    assert result.result == ("req-0123456789", "giftshop.tests.request_id_of_this_run")
    started_alone = request_id_of_this_run.apply().result  # beat's tasks: an id of their own
    assert len(started_alone[0]) == 32
    assert current() == {}


# --- Sentry -----------------------------------------------------------------------------------------------------


class Collected(Transport):
    """A transport that keeps the envelopes instead of sending them (sentry-sdk's own extension point)."""

    envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)


@pytest.fixture
def sentry_events():
    Collected.envelopes = []
    sentry.init("https://public@sentry.invalid/1", transport=Collected)
    try:
        yield lambda: [item.payload.json for env in Collected.envelopes for item in env.items if item.type == "event"]
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: off again for the other tests


@pytest.mark.urls(__name__)
def test_sentry_reports_a_failed_request_with_no_code_card_or_note_in_it(sentry_events):
    client = Client(raise_request_exception=False)
    form = {"code": CODE, "card_number": CARD, "cvc": "123", "note": "Happy birthday, Robin", "offer": "S1"}
    response = client.post(f"/boom/?giftCode={CODE}&t=42.secretsecretsecret", form)
    assert response.status_code == 500
    sentry_sdk.flush()
    events = sentry_events()
    assert events, "no event reached the transport"
    sent = json.dumps(events, ensure_ascii=False)
    for secret in (CODE, "7QX2K9PM", CARD, "4242424242424242", "Happy birthday", "secretsecret", '"123"'):
        assert secret not in sent, secret
    error = next(event for event in events if event.get("exception"))
    assert error["exception"]["values"][-1]["type"] == "ValueError"
    assert error["exception"]["values"][-1]["value"] == "no gift •••• for card •••• (note: ••••)"
    assert error["request"]["data"]["offer"] == "S1"  # what is not secret stays, for the developer
    assert error["request"]["data"]["card_number"] == "[Filtered]"


def test_sentry_reports_an_error_log_line_masked(sentry_events):
    logging.getLogger("emails.services").error("email to /gifts/redeem/%s failed", CODE)
    sentry_sdk.flush()
    (event,) = sentry_events()
    assert CODE not in json.dumps(event, ensure_ascii=False) and "••••-K9PM" in json.dumps(event, ensure_ascii=False)


def test_the_scrubber_masks_bare_codes_and_card_numbers_but_not_words():
    assert sentry.scrub_text(f"code {CODE} card {CARD}") == "code ••••-K9PM card ••••"
    assert sentry.scrub_text("card 4242-4242-4242-4242 ok") == "card •••• ok"
    assert sentry.scrub_text("redeemed 7qx2k9pm") == "redeemed ••••-K9PM"
    assert sentry.scrub_text("Birthday gift for Robin") == "Birthday gift for Robin"
    assert sentry.scrub_text("offer S100000001") == "offer S100000001"


def test_sentry_is_turned_on_by_sentry_dsn_alone():
    """settings.py starts it when SENTRY_DSN is set, and only then (a fresh interpreter each: it is process-wide)."""
    probe = "import django, sentry_sdk; django.setup(); print(sentry_sdk.get_client().dsn)"

    def dsn_with(**env):
        done = subprocess.run(
            [sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert dsn_with(SENTRY_DSN="https://public@sentry.invalid/1") == "https://public@sentry.invalid/1"
    assert dsn_with(SENTRY_DSN="") == "None"
