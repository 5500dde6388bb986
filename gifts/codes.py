"""Gift codes: `XXXX-XXXX` over Crockford's base32 alphabet (no I, L, O, U), 40 bits; and the emailed link's token.

No column holds a redeemable code. A gift stores a random nonce (from `secrets`); its code is a keyed PRF
of that nonce (HMAC-SHA-256 under GIFT_CODE_SECRET, first 40 bits), so the worker can put the code in the
delivery email and the gifter can see it, while a database dump alone yields nothing redeemable. Look-ups go
through a second keyed hash of the normalised code, which is indexed and unique. (A salted slow hash, as
ASVS 6.5.2 suggests for short secrets, could not be looked up; the attempt limits make up for it.)

The delivery email's link carries a second secret, a 128-bit token (CODE-R3): `<gift id>.<MAC>`, the MAC an HMAC of
the gift's id and nonce under a key of its own purpose, so it is bound to one gift, changes when the code is
reissued (new nonce), and is not stored either. At 128 bits it cannot be guessed, so it keeps working when typed
codes are paused by the global attempt budget (giftshop/ratelimit.py); the short code is the manual fallback.
"""

import base64
import hashlib
import hmac
import re
import secrets

from django.conf import settings
from django.utils.translation import gettext as _

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{8}$")
# Crockford decoding: case-insensitive, O is 0, I and L are 1; hyphens and spaces are ignored, and so are the dashes
# a pasted code may carry (word processors and mail clients turn "-" into en or em dashes): every Unicode hyphen and
# dash of the Pd class a code could meet, the minus sign, and their small and full-width forms.
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = re.compile(r"[\s\-_\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+")
LINK_TOKEN_BYTES = 16  # 128 bits (ASVS 11.5.1)
_LINK_TOKEN_RE = re.compile(r"^([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{22})$")


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
        raise InvalidCode(_("A gift code has eight letters and digits, like ABCD-1234."))
    return raw


def digest(raw):
    """The indexed look-up key of a normalised code."""
    return hmac.new(_key("lookup"), raw.encode(), hashlib.sha256).hexdigest()


def _link_mac(gift_id, nonce):
    message = f"{gift_id}:{nonce}".encode()
    return hmac.new(_key("link"), message, hashlib.sha256).digest()[:LINK_TOKEN_BYTES]


def link_token(gift_id, nonce):
    """The redeem link's token of a gift: its id, a dot, and 128 bits of MAC in unpadded base64url."""
    return f"{gift_id}.{base64.urlsafe_b64encode(_link_mac(gift_id, nonce)).rstrip(b'=').decode()}"


def is_link_token(text):
    """Whether `text` is shaped like a link token (a code never contains a dot)."""
    return bool(_LINK_TOKEN_RE.match(str(text or "")))


def link_token_gift_id(token):
    """The gift id a well-formed token names (not yet verified), or None."""
    match = _LINK_TOKEN_RE.match(str(token or ""))
    return int(match.group(1)) if match else None


def link_token_matches(token, gift_id, nonce):
    """Whether `token` is the link token of this gift, compared in constant time."""
    return hmac.compare_digest(str(token).encode(), link_token(gift_id, nonce).encode())
