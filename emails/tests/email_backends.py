"""Fake email providers (the outside world of the outbox tests). Each one delivers like Django's locmem backend,
into django.core.mail.outbox, unless it is set up to fail; it fails the way an anymail ESP backend does.

Instances are made per connection, so the set-up and the record of attempts live on the class: call `reset()`
in a fixture, and use it as `settings.EMAIL_BACKEND = "emails.tests.email_backends.FlakyBackend"`."""

import json

import requests
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.mail.backends.locmem import EmailBackend

KEY_HEADER = "X-Giftshop-Email-Key"


def provider_error(status_code, reason):
    """What anymail raises when the ESP's API answers `status_code`."""
    response = requests.Response()
    response.status_code, response.reason = status_code, reason
    response._content = json.dumps({"message": reason}).encode()
    return AnymailAPIError(
        f"Fake ESP API response {status_code}", status_code=status_code, response=response, esp_name="Fake ESP"
    )


class RecordingBackend(EmailBackend):
    """Records each attempt (the outbox key of the message) in `attempts`, then sends unless `error_for` says."""

    attempts = []

    @classmethod
    def reset(cls):
        cls.attempts = []

    @classmethod
    def attempts_of(cls, key):
        return cls.attempts.count(key)

    def error_for(self, message, attempt):
        return None

    def send_messages(self, messages):
        sent = 0
        for message in messages:
            key = message.extra_headers.get(KEY_HEADER, "")
            type(self).attempts.append(key)
            error = self.error_for(message, self.attempts_of(key))
            if error is not None:
                raise error
            sent += super().send_messages([message])
        return sent


class FlakyBackend(RecordingBackend):
    """Answers 503 Service Unavailable to the first `failures` attempts of each message, then accepts it."""

    failures = 0

    @classmethod
    def reset(cls, failures=0):
        super().reset()
        cls.failures = failures

    def error_for(self, message, attempt):
        return provider_error(503, "Service Unavailable") if attempt <= self.failures else None


class LostAnswerBackend(FlakyBackend):
    """Takes the first `failures` attempts of each message, but the answer never arrives (a read timeout): the
    provider may have accepted them."""

    def error_for(self, message, attempt):
        return requests.ReadTimeout("Read timed out. (read timeout=15)") if attempt <= self.failures else None


class RefusingBackend(RecordingBackend):
    """Refuses, for good, every message to one of `refused` addresses: 400 Bad Request, or the recipients
    refused (an invalid or suppressed address)."""

    refused = frozenset()
    error = "bad_request"

    @classmethod
    def reset(cls, refused=(), error="bad_request"):
        super().reset()
        cls.refused, cls.error = frozenset(refused), error

    def error_for(self, message, attempt):
        if not self.refused.intersection(message.recipients()):
            return None
        if self.error == "recipients_refused":
            return AnymailRecipientsRefused("Fake ESP refused the recipients", email_message=message)
        return provider_error(400, "Bad Request")
