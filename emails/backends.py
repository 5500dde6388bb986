"""Email backends that send many messages in one request, where the provider's API has a batch call. The outbox
(emails/services.py) uses a backend's `send_batch(messages)` when it has one, and sends one message per request
otherwise; each message's own result in the batch answer decides that message's fate.

`emails.backends.PostmarkBatchBackend` is django-anymail's Postmark backend (the same settings: `ANYMAIL_POSTMARK_*`)
with Postmark's batch API, `POST /email/batch` (up to 500 messages a call)."""

from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused, AnymailRequestsAPIError
from anymail.message import AnymailRecipientStatus, AnymailStatus
from requests import RequestException

# Postmark's per-message error codes that refuse the recipient for good: invalid address, inactive recipient.
REFUSED_RECIPIENT = {300, 406}


class PostmarkBatchBackend(PostmarkBackend):
    """anymail's Postmark backend, plus `send_batch`."""

    batch_limit = 500

    def send_batch(self, messages):
        """Sends `messages` (each to one address) in one request. Returns, per message in order, None when Postmark
        accepted it (its `anymail_status` carries the message id), or the error that refused it. An error of the
        whole request (HTTP 429 or 5xx, no answer) is raised, as anymail raises it for a single message."""
        if not messages:
            return []
        created = self.open()
        try:
            return self._send_batch(messages)
        finally:
            if created:
                self.close()

    def _send_batch(self, messages):
        payloads = []
        for message in messages:
            message.anymail_status = AnymailStatus()
            payloads.append(self.build_message_payload(message, self.send_defaults))
        first = payloads[0]
        params = first.get_request_params(self.api_url)
        params.update(
            url=f"{self.api_url}email/batch",
            data=first.serialize_json([payload.data for payload in payloads]),
            timeout=self.timeout,
        )
        try:
            response = self.session.request(**params)
        except RequestException as error:
            raise AnymailRequestsAPIError(str(error), email_message=messages[0], payload=first, backend=self) from error
        if not 200 <= response.status_code < 300:
            raise AnymailRequestsAPIError(email_message=messages[0], payload=first, response=response, backend=self)
        answers = self.deserialize_json_response(response, first, messages[0])
        if not isinstance(answers, list) or len(answers) != len(messages):
            raise AnymailRequestsAPIError(
                "Postmark's batch answer does not match the messages sent",
                email_message=messages[0],
                payload=first,
                response=response,
                backend=self,
            )
        return [self._result(message, answer) for message, answer in zip(messages, answers, strict=True)]

    @staticmethod
    def _result(message, answer):
        to = message.to[0] if message.to else ""
        code, text = answer.get("ErrorCode", 0), answer.get("Message", "")
        if code == 0:
            status = "queued" if "delivery may be delayed" in text else "sent"
            message.anymail_status.set_recipient_status(
                {to: AnymailRecipientStatus(message_id=answer.get("MessageID"), status=status)}
            )
            return None
        if code in REFUSED_RECIPIENT:
            message.anymail_status.set_recipient_status(
                {to: AnymailRecipientStatus(message_id=None, status="rejected")}
            )
            return AnymailRecipientsRefused(f"Postmark refused {to}: {text} (error {code})")
        # Postmark answers a message it will not send with 422 on its own API: the same here.
        return AnymailAPIError(f"Postmark error {code}: {text}", status_code=422)
