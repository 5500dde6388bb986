"""The one exception services raise for a request they refuse; both APIs and the web pages translate it."""


class ServiceError(Exception):
    """`code` is machine-readable, `message` is for people, `field` names the offending input (if any) and
    `status` is the HTTP status the refusal maps to."""

    def __init__(self, message, *, code="invalid", field=None, status=422):
        super().__init__(message)
        self.message, self.code, self.field, self.status = message, code, field, status
