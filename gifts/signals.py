"""What the gift lifecycle tells the apps above it, which it must not import (billing reacts to a claim)."""

from django.dispatch import Signal

# Sent inside the claiming transaction, once per gift that became `claimed`; `gift` is the claimed gift.
gift_claimed = Signal()

# Sent inside the retention rule's transaction (gifts/retention.py) with `gift_ids`: the gifts whose personal details
# (note, signature, recipient's address and names) were removed; the apps above remove their copies.
gift_details_removed = Signal()
