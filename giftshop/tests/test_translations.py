"""The translation checkers (issue 17): every catalogue complete and compiled, every template's text inside translation
tags, and no marked string missing from the catalogues. They read the source and the catalogues, not a database."""

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

BASE_DIR = Path(settings.BASE_DIR)
LOCALE_DIR = BASE_DIR / "locale"
TEMPLATES_DIR = BASE_DIR / "templates"
TRANSLATED = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]

# Text in templates that is not in any language, so has nothing to translate. Keep it short and honest: a word
# that a reader of another language would read differently does not belong here.
ALLOWED_WORDS = {
    "Giftshop",  # the product's name
    "XXXX-XXXX",  # what a gift code looks like, in its field's placeholder
}
# Whole tokens that are not words: addresses, e-mail addresses, time zones' IANA names, settings' names.
NOT_WORDS = re.compile(r"^(https?://\S+|\S+@\S+\.\S+|[A-Z][a-z]+/[A-Za-z_]+|[A-Z][A-Z0-9]*_[A-Z0-9_]+)$")
# Attributes read out or shown to people (the rest of a tag is markup).
READ_ATTRIBUTES = re.compile(
    r"""\s(?:alt|title|placeholder|aria-label|aria-description|aria-roledescription|label|data-confirm)\s*=\s*
        (?:"([^"]*)"|'([^']*)')""",
    re.VERBOSE | re.IGNORECASE,
)
BUTTON_VALUE = re.compile(
    r"""<input\b[^>]*\btype\s*=\s*["']?(?:submit|button|reset)\b[^>]*\bvalue\s*=\s*"([^"]*)\"""", re.IGNORECASE
)
# Tags whose body is translated text (blocktranslate), no text at all (comment) or markup: the admin's body class names.
SKIPPED_BLOCKS = {
    "blocktranslate": "endblocktranslate",
    "blocktrans": "endblocktrans",
    "comment": "endcomment",
    "block bodyclass": "endblock",
}
PLACEHOLDER = "\x00"  # where a {{ variable }} or a {% tag %} stood
# Stripped from each word's ends: ASCII punctuation, typographic quotes and dashes, the ellipsis, the middle dot.
PUNCTUATION = ".,:;!?()[]{}\"'*#%+=<>|/-" + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u2014\u2013\u2026\u00b7"
LETTER = re.compile(r"[^\W\d_]")


def catalogues():
    return sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))


def _entries(entries):
    """A catalogue's translations, keyed as gettext looks them up."""
    found = {}
    for entry in entries:
        if entry.obsolete or not entry.msgid or "fuzzy" in entry.flags:
            continue
        translation = tuple(sorted(entry.msgstr_plural.items())) if entry.msgid_plural else entry.msgstr
        found[(entry.msgctxt, entry.msgid, entry.msgid_plural or None)] = translation
    return found


@pytest.mark.parametrize("language", TRANSLATED)
def test_it_ships_a_catalogue_for_every_language(language):
    assert (LOCALE_DIR / language / "LC_MESSAGES" / "django.po").is_file(), f"locale/{language} has no django.po"


@pytest.mark.parametrize("path", catalogues(), ids=lambda path: str(path.relative_to(LOCALE_DIR)))
def test_it_has_every_catalogue_complete(path):
    catalogue = polib.pofile(str(path))
    untranslated = [entry.msgid for entry in catalogue.untranslated_entries()]
    fuzzy = [entry.msgid for entry in catalogue.fuzzy_entries()]
    obsolete = [entry.msgid for entry in catalogue.obsolete_entries()]
    assert not untranslated, f"{len(untranslated)} untranslated: {untranslated[:20]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy (check each, then remove the flag): {fuzzy[:20]}"
    assert not obsolete, f"{len(obsolete)} obsolete (run `make messages`): {obsolete[:20]}"


@pytest.mark.parametrize("path", catalogues(), ids=lambda path: str(path.relative_to(LOCALE_DIR)))
def test_it_commits_each_catalogue_compiled(path):
    """The .mo files are committed (installing needs no gettext): each must say what its .po says."""
    compiled = path.with_suffix(".mo")
    assert compiled.is_file(), f"{compiled.relative_to(BASE_DIR)} is missing: run `make messages`"
    source = {key: value for key, value in _entries(polib.pofile(str(path))).items() if value and value != ()}
    assert _entries(polib.mofile(str(compiled))) == source, f"{compiled.name} is stale: run `make messages`"


def template_text(source):
    """What a template shows outside translation tags: its text tokens, with {% blocktranslate %} bodies, comments,
    scripts and styles left out, tags reduced to the attributes people read, entities decoded."""
    shown, skipping = [], None
    for token in Lexer(source).tokenize():
        contents = token.contents.split(" ", 1)[0] if token.token_type == TokenType.BLOCK else ""
        if skipping:
            if contents == skipping:
                skipping = None
            continue
        if contents in SKIPPED_BLOCKS or token.contents in SKIPPED_BLOCKS:
            skipping = SKIPPED_BLOCKS.get(contents) or SKIPPED_BLOCKS[token.contents]
            shown.append(PLACEHOLDER)
        elif token.token_type == TokenType.TEXT:
            shown.append(token.contents)
        elif token.token_type in (TokenType.VAR, TokenType.BLOCK):
            shown.append(PLACEHOLDER)
    text = "".join(shown)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", text, flags=re.DOTALL | re.IGNORECASE)
    read = [a or b for a, b in READ_ATTRIBUTES.findall(text)] + BUTTON_VALUE.findall(text)
    text = re.sub(r"<[^>]*>", " ", text)
    return html.unescape(" ".join([text, *read]))


def untranslated_words(source):
    words = []
    for chunk in template_text(source).split():
        for word in chunk.split(PLACEHOLDER):
            word = word.strip(PUNCTUATION)
            if word and LETTER.search(word) and word not in ALLOWED_WORDS and not NOT_WORDS.match(word):
                words.append(word)
    return words


def test_the_template_checker_finds_text_outside_translation_tags():
    source = (
        '{% load i18n %}<p title="Hover me">{% translate "Fine" %} Loose words {{ name }}</p>'
        "{% blocktranslate %}Also fine {{ name }}{% endblocktranslate %}{# a comment #}"
        '<style>.a { color: red; }</style><img alt="A picture" src="x.png"><input type="submit" value="Send">'
        "&nbsp;&copy; 2026 Giftshop https://example.com"
    )
    assert untranslated_words(source) == ["Loose", "words", "Hover", "me", "A", "picture", "Send"]


def test_it_has_no_template_text_outside_translation_tags():
    offenders = {}
    for path in sorted(TEMPLATES_DIR.rglob("*")):
        if path.suffix in (".html", ".txt") and path.is_file():
            words = untranslated_words(path.read_text(encoding="utf-8"))
            if words:
                offenders[str(path.relative_to(TEMPLATES_DIR))] = words
    listing = "\n".join(f"{name}: {' '.join(words[:12])}" for name, words in offenders.items())
    assert not offenders, f"{len(offenders)} templates have text outside translation tags:\n{listing}"


def _msgids(path):
    return {(entry.msgctxt, entry.msgid) for entry in polib.pofile(str(path)) if not entry.obsolete and entry.msgid}


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext (xgettext) is needed to extract messages")
def test_it_has_every_marked_string_in_the_catalogues(tmp_path):
    """What `make messages` would extract, in a copy of the source (so this checkout's catalogues stay as they are),
    has no msgid the committed catalogues lack: every marked string has been extracted and translated."""
    ignore = shutil.ignore_patterns(".*", "var", "staticfiles", "node_modules", "__pycache__", "bench", "deploy")
    shutil.copytree(BASE_DIR, tmp_path / "src", ignore=ignore, symlinks=True)
    source = tmp_path / "src"
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "--no-obsolete", "--no-location", "-l", TRANSLATED[0]],
        cwd=source,
        check=True,
        capture_output=True,
    )
    extracted = _msgids(source / "locale" / TRANSLATED[0] / "LC_MESSAGES" / "django.po")
    committed = LOCALE_DIR / TRANSLATED[0] / "LC_MESSAGES" / "django.po"
    missing = extracted - (_msgids(committed) if committed.is_file() else set())
    listing = sorted(missing, key=str)[:20]
    assert not missing, f"{len(missing)} marked strings are not in the catalogues (run `make messages`): {listing}"
