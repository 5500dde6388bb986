"""The customer's gifts in their personal data copy (accounts/personal_data.py): those they gave, and those they
received, without codes or link tokens."""


def gifts(customer):
    given = customer.gifts_given.select_related("offer").order_by("created_at", "pk")
    received = customer.gifts_received.select_related("offer", "gifter").order_by("created_at", "pk")
    return {
        "given": [
            {
                "offer": gift.offer.title,
                "status": gift.status,
                "recipient_email": gift.recipient_email,
                "recipient_first_name": gift.recipient_first_name,
                "signature": gift.signature,
                "personal_note": gift.personal_note,
                "scheduled_at": gift.scheduled_at,
                "time_zone": gift.time_zone,
                "sent_at": gift.sent_at,
                "claimed_at": gift.claimed_at,
            }
            for gift in given
        ],
        "received": [
            {
                "offer": gift.offer.title,
                "status": gift.status,
                "from": gift.from_name,
                "personal_note": gift.personal_note,
                "sent_at": gift.sent_at,
                "claimed_at": gift.claimed_at,
            }
            for gift in received
        ],
    }
