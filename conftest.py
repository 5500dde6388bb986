import pytest


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    # Production serves collected, hashed files; tests render templates without running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _tasks_run_in_process(request):
    """Tasks queued by the code under test run in the test's process, right when they are published.
    Tests marked `real_broker` (the process-level tests) publish to Redis for real workers instead."""
    from giftshop.celery import app

    eager = "real_broker" not in request.keywords
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Attempt counters live in the cache (Redis in tests): each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
