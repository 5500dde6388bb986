import os

import pytest


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    # Production serves collected, hashed files; tests render templates without running collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Factories set passwords on every customer; PBKDF2's 10^6 iterations took half of some tests' time.
    # Production keeps Django's default hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium under Playwright (no browser download): the browser tests' browser."""
    import shutil

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: apt-get install chromium (bin/test does it).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def screenshots(request):
    """Saves full-page screenshots under $TEST_OUTPUT_DIR/screenshots/<test name>/."""
    from pathlib import Path

    folder = Path(os.environ.get("TEST_OUTPUT_DIR", "test-output")) / "screenshots" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return shoot


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """A request leaves its language active in the thread that served it (LocaleMiddleware activates, nothing
    deactivates): the test client's German request must not make the next test's services speak German."""
    from django.utils import translation

    yield
    translation.deactivate()
