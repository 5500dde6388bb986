"""The built-in gift designs for tests: the migration that adds them (gifts/migrations/0010_gift_designs.py) runs
once, and a transactional test's flush removes its rows (a reused database keeps them removed), so the tests that
rely on them make them again, from the migration's own list."""

from importlib import import_module

import pytest

from gifts.models import GiftDesign

BUILT_IN = import_module("gifts.migrations.0010_gift_designs").BUILT_IN


@pytest.fixture
def builtin_designs():
    for slug, name, background, accent, text, position in BUILT_IN:
        GiftDesign.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "background_colour": background,
                "accent_colour": accent,
                "text_colour": text,
                "position": position,
                "builtin_artwork": True,
                "is_active": True,
            },
        )
    GiftDesign._default = (0.0, None)  # the plain design as it is now, not as an earlier test cached it
