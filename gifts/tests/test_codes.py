"""Gift codes: how they are drawn (SEC-1) and how what people type is matched to them (SEC-2)."""

import ast
import inspect
import math
import random
import re
from collections import Counter
from operator import itemgetter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gifts import codes
from gifts.tests.factories import GiftFactory, GuestFactory
from gifts.verification import GiftNotFound, gift_by_code, gift_verify
from giftshop.errors import ServiceError

# Crockford's base32, spelled out here rather than imported, so a change to the generator's alphabet shows up.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_FORMAT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")
SAMPLE_SIZE = 1_000_000
SYMBOL_POSITIONS = (0, 1, 2, 3, 5, 6, 7, 8)  # around the hyphen
# Eight chi-square tests at once: each must pass at 0.001 / 8 so that the whole check fails by chance once in a
# thousand runs (Bonferroni), not once in 125. A biased generator is off by thousands, not by this margin.
FAMILY_P, PER_POSITION_P = 0.001, 0.001 / len(SYMBOL_POSITIONS)


def chi2_sf(statistic, df):
    """P(X >= statistic) for X ~ chi-square(df): the regularised upper incomplete gamma Q(df/2, statistic/2), by its
    power series or its continued fraction (Numerical Recipes' gser/gcf), since scipy is not installed."""
    a, x = df / 2, statistic / 2
    prefactor = math.exp(a * math.log(x) - x - math.lgamma(a))
    if x < a + 1:
        term = total = 1 / a
        n = 0
        while term > total * 1e-17:
            n += 1
            term *= x / (a + n)
            total += term
        return 1 - total * prefactor
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = 1 / (an * d + b or tiny)
        c = b + an / c or tiny
        fraction *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return prefactor * fraction


def chi_square(counts, categories, total):
    expected = total / len(categories)
    return sum((counts.get(symbol, 0) - expected) ** 2 / expected for symbol in categories)


@pytest.fixture(scope="module")
def million_codes():
    return [codes.format_code(codes.code_for_nonce(codes.new_nonce())) for _ in range(SAMPLE_SIZE)]


# --- SEC-1: the generator -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statistic", "p"),
    [
        (61.098, 0.001),
        (44.985, 0.05),
        (30.336, 0.5),
        (19.281, 0.95),
    ],  # published critical values for 31 degrees of freedom
)
def test_it_computes_chi_square_tail_probabilities_that_match_the_published_tables(statistic, p):
    assert chi2_sf(statistic, 31) == pytest.approx(p, rel=2e-3)


def test_it_formats_every_one_of_a_million_codes_as_two_groups_of_four_crockford_symbols(million_codes):
    malformed = [code for code in million_codes if not CODE_FORMAT.match(code)]
    assert malformed == []


def test_it_repeats_codes_among_a_million_no_more_often_than_40_random_bits_must(million_codes):
    # 40 bits cannot promise "no duplicates" among 10^6 draws: the birthday bound expects about
    # n^2 / 2^41 = 0.45 colliding pairs (a repeat in ~36 % of runs; the unique index and a fresh code on
    # collision handle it). More than 5 has probability < 10^-5; a 32-bit generator would make about 116.
    expected_pairs = SAMPLE_SIZE * (SAMPLE_SIZE - 1) / 2 / 2**40
    assert expected_pairs == pytest.approx(0.45, abs=0.01)
    repeats = SAMPLE_SIZE - len(set(million_codes))
    assert repeats <= 5


def test_it_uses_every_symbol_equally_often_at_every_position_of_a_million_codes(million_codes):
    p_values = {}
    for position in SYMBOL_POSITIONS:
        counts = Counter(map(itemgetter(position), million_codes))
        assert set(counts) == set(CROCKFORD)
        p_values[position] = chi2_sf(chi_square(counts, CROCKFORD, SAMPLE_SIZE), df=len(CROCKFORD) - 1)
    assert min(p_values.values()) > PER_POSITION_P, p_values


def test_it_would_reject_a_generator_with_modulo_bias():
    # The statistic above is only worth something if it catches the classic mistake: one random byte mod 32
    # is fair, but mod 36 folded onto 32 symbols is not.
    rng = random.Random(1)
    biased = Counter(CROCKFORD[rng.randrange(256) % 36 % 32] for _ in range(SAMPLE_SIZE // 10))
    assert chi2_sf(chi_square(biased, CROCKFORD, SAMPLE_SIZE // 10), df=31) < PER_POSITION_P


def test_it_draws_nonces_from_the_secrets_module():
    tree = ast.parse(inspect.getsource(codes))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "secrets" in imported and "random" not in imported
    assert "secrets." in inspect.getsource(codes.new_nonce)
    # and, by behaviour: seeding the random module does not make nonces repeat
    random.seed(42)
    first = codes.new_nonce()
    random.seed(42)
    assert codes.new_nonce() != first
    assert re.fullmatch(r"[0-9a-f]{32}", first)  # 128 bits


def test_it_derives_the_same_code_from_the_same_nonce_and_another_from_another_nonce():
    nonce = codes.new_nonce()
    assert codes.code_for_nonce(nonce) == codes.code_for_nonce(nonce)
    assert codes.code_for_nonce(nonce) != codes.code_for_nonce(codes.new_nonce())


# --- SEC-2: what people type ----------------------------------------------------------------------------------

# Crockford decoding: O reads as 0, I and L as 1, and case does not matter.
SPELLINGS = {"0": "0Oo", "1": "1IiLl"}
SEPARATORS = st.sampled_from(["", "", "", " ", "-", "  ", " - ", "\t", "_"])
NOT_SYMBOLS = "Uu!?.,;:*#@/\\+=()[]{}<>'\"%&$~|`^éü€"


@st.composite
def typed(draw, code):
    """`code` as a person might type it: any case, look-alikes, spaces and hyphens anywhere."""
    text = draw(SEPARATORS)
    for symbol in code.replace("-", ""):
        text += draw(st.sampled_from(SPELLINGS.get(symbol, symbol + symbol.lower())))
        text += draw(SEPARATORS)
    return text


@st.composite
def mistyped(draw, code):
    """`code` with a symbol outside the alphabet, or with symbols missing or extra."""
    raw = code.replace("-", "")
    mistake = draw(st.sampled_from(["foreign_symbol", "too_short", "too_long"]))
    if mistake == "foreign_symbol":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.sampled_from(NOT_SYMBOLS)) + raw[at + 1 :]
    elif mistake == "too_short":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    else:
        raw += draw(st.text(alphabet=CROCKFORD, min_size=1, max_size=4))
    return draw(st.sampled_from([raw, raw.lower(), codes.format_code(raw)]))


def nonce_with_lookalike_digits():
    """A nonce whose code contains both 0 and 1, so that O and I/L spellings are exercised."""
    while True:
        nonce = codes.new_nonce()
        raw = codes.code_for_nonce(nonce)
        if "0" in raw and "1" in raw and any(symbol.isalpha() for symbol in raw):
            return nonce


@pytest.fixture
def gift(db):
    return GiftFactory(code_nonce=nonce_with_lookalike_digits(), status="unclaimed")


@pytest.fixture
def recipient(db):
    return GuestFactory()


# One gift per test, shared by all examples: the examples only vary the typed string and never write.
shared_gift = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@given(raw=st.text(alphabet=CROCKFORD, min_size=8, max_size=8), data=st.data())
def test_it_normalises_any_typed_spelling_of_a_code_to_its_eight_symbols(raw, data):
    assert codes.normalize(data.draw(typed(codes.format_code(raw)))) == raw


@shared_gift
@given(data=st.data())
def test_it_finds_the_gift_whatever_case_spacing_hyphens_and_look_alikes_are_typed(gift, recipient, data):
    text = data.draw(typed(gift.code))
    assert gift_by_code(text).pk == gift.pk
    verification = gift_verify(customer=recipient, code=text)
    assert verification.gift.pk == gift.pk and verification.redeemable


@shared_gift
@given(data=st.data())
def test_it_refuses_codes_with_foreign_symbols_or_the_wrong_length_as_invalid(gift, recipient, data):
    text = data.draw(mistyped(gift.code))
    with pytest.raises(ServiceError) as refused:
        gift_verify(customer=recipient, code=text)
    assert (refused.value.status, refused.value.code, refused.value.field) == (400, "invalid_code", "code")


@pytest.mark.parametrize("text", ["", "   ", None, "ABCD-EFGU", "ABCD-EFG!", "ABCD-EFG", "ABCD-EFGHJ"])
def test_it_refuses_empty_and_malformed_codes_before_looking_them_up(db, text, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(ServiceError) as refused:
        gift_by_code(text)
    assert (refused.value.status, refused.value.code) == (400, "invalid_code")


def test_it_answers_not_found_for_a_well_formed_code_no_gift_has(gift):
    other = codes.format_code(codes.code_for_nonce(codes.new_nonce()))
    with pytest.raises(GiftNotFound) as missing:
        gift_by_code(other)
    assert missing.value.status == 404


# En and em dashes, and every other Unicode hyphen or minus, as word processors and mail clients turn "-" into.
UNICODE_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"


@pytest.mark.parametrize("dash", list(UNICODE_DASHES))
def test_it_accepts_a_pasted_code_with_any_unicode_dash_or_hyphen(dash):
    raw = codes.code_for_nonce(codes.new_nonce())
    assert codes.normalize(f"{raw[:4]}{dash}{raw[4:]}") == raw
    assert codes.normalize(f" {raw[:4].lower()} {dash} {raw[4:]} ") == raw


def test_it_finds_the_gift_of_a_code_pasted_with_an_em_dash(gift, recipient):
    pasted = gift.code.replace("-", "\u2014")
    assert gift_verify(customer=recipient, code=pasted).gift.pk == gift.pk
