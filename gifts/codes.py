"""Gift codes: `XXXX-XXXX` over Crockford's base32 alphabet (no I, L, O, U), 40 bits.

No column holds a redeemable code. A gift stores a random nonce (from `secrets`); its code is a keyed PRF
of that nonce (HMAC-SHA-256 under GIFT_CODE_SECRET, first 40 bits), so the worker can put the code in the
delivery email and the gifter can see it, while a database dump alone yields nothing redeemable. Look-ups go
through a second keyed hash of the normalised code, which is indexed and unique. (A salted slow hash, as
ASVS 6.5.2 suggests for short secrets, could not be looked up; the attempt limits make up for it.)
"""

import hashlib
import hmac
import re
import secrets

from django.conf import settings

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{8}$")
# Crockford decoding: case-insensitive, O is 0, I and L are 1; hyphens and spaces are ignored.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = re.compile(r"[\s\-_]+")


class InvalidCode(ValueError):
    pass


def _key(purpose):
    return hmac.new(settings.GIFT_CODE_SECRET.encode(), purpose.encode(), hashlib.sha256).digest()


def new_nonce():
    return secrets.token_hex(16)


def code_for_nonce(nonce):
    """The 8-symbol code of a nonce: 40 uniform bits, 5 per symbol (no modulo bias)."""
    value = int.from_bytes(hmac.new(_key("code"), nonce.encode(), hashlib.sha256).digest()[:5], "big")
    symbols = [ALPHABET[(value >> shift) & 0b11111] for shift in range(35, -1, -5)]
    return "".join(symbols)


def format_code(raw):
    return f"{raw[:4]}-{raw[4:]}"


def normalize(text):
    """The 8 canonical symbols of what a person typed, or InvalidCode."""
    raw = _IGNORED.sub("", str(text or "")).upper().translate(_LOOKALIKES)
    if not CODE_RE.match(raw):
        raise InvalidCode("A gift code has eight letters and digits, like ABCD-1234.")
    return raw


def digest(raw):
    """The indexed look-up key of a normalised code."""
    return hmac.new(_key("lookup"), raw.encode(), hashlib.sha256).hexdigest()
