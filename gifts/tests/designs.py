"""The built-in gift designs for tests: the migration that adds them (gifts/migrations/0010_gift_designs.py) runs
once, and a transactional test's flush removes its rows (a reused database keeps them removed), so the tests that
rely on them run the migration's own step again."""

from importlib import import_module

import pytest
from django.apps import apps

from gifts.models import GiftDesign

add_built_in = import_module("gifts.migrations.0010_gift_designs").add_built_in


@pytest.fixture
def builtin_designs():
    add_built_in(apps, None)
    GiftDesign._default = (0.0, None)  # the plain design as it is now, not as an earlier test cached it
