"""The plumbing's part of a customer's erasure (settings.PERSONAL_DATA_ERASERS): the merchant API's stored responses
(idempotency records, kept IDEMPOTENCY_RETENTION for replays) name the erased addresses as the pseudonymous one.
Rewritten, not deleted: a record deleted early would let a retried purchase run (and charge) twice."""

import re

from giftshop.models import IdempotencyRecord


def erase_idempotency_records(erasure):
    if not erasure.addresses:
        return
    pattern = re.compile(b"|".join(re.escape(a.encode()) for a in erasure.addresses), re.IGNORECASE)
    for pk, body in IdempotencyRecord.objects.values_list("pk", "body").iterator():
        rewritten = pattern.sub(erasure.address.encode(), bytes(body))
        if rewritten != bytes(body):
            IdempotencyRecord.objects.filter(pk=pk).update(body=rewritten)
