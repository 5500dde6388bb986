import os

import pytest

# `pytest` run directly behaves like bin/test: real PostgreSQL and Redis, production-like settings.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/giftshop")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("HTTPS", "false")


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    # Production serves collected, hashed files; tests render templates without running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
