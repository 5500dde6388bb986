"""What the gift lifecycle tells the apps above it, which it must not import (billing reacts to a claim)."""

from django.dispatch import Signal

# Sent inside the claiming transaction, once per gift that became `claimed`; `gift` is the claimed gift.
gift_claimed = Signal()
