"""Giftshop settings: one module, driven by the environment (see README "Configuration").

With nothing configured it runs a local demo on SQLite with an embedded (filesystem) Celery broker.
With DEBUG off it refuses to start unless the secrets and hosts a production deployment needs are set.
"""

import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from giftshop import sentry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Where the zero-configuration demo keeps its SQLite file, broker queue and beat state.
DATA_DIR = Path(env.str("GIFTSHOP_DATA_DIR", default=str(BASE_DIR / "var")))


def _required(name, dev_default):
    """A secret or host list: a development default under DEBUG, a loud failure in production."""
    if name in env.ENVIRON:
        return env.ENVIRON[name]
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment (see .env.example), or set DEBUG=true for local development."
    )


SECRET_KEY = _required("SECRET_KEY", "django-insecure-development-only-key-do-not-deploy")
ALLOWED_HOSTS = [h.strip() for h in _required("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
# Failed gift-code attempts allowed per client address and per account in each window (seconds).
GIFT_CODE_ATTEMPT_LIMIT = env.int("GIFT_CODE_ATTEMPT_LIMIT", default=10)
GIFT_CODE_ATTEMPT_WINDOW = env.int("GIFT_CODE_ATTEMPT_WINDOW", default=15 * 60)
# Failed logins (web and storefront API) per client address and per account address per window.
LOGIN_ATTEMPT_LIMIT = env.int("LOGIN_ATTEMPT_LIMIT", default=10)
LOGIN_ATTEMPT_WINDOW = env.int("LOGIN_ATTEMPT_WINDOW", default=15 * 60)
# Registrations (web and storefront API) per client address per window: every attempt counts.
REGISTER_LIMIT = env.int("REGISTER_LIMIT", default=10)
REGISTER_WINDOW = env.int("REGISTER_WINDOW", default=60 * 60)
# How often a gifter may send a gift to another address: per gift, and over all their gifts per hour.
RECIPIENT_CHANGES_PER_GIFT = env.int("RECIPIENT_CHANGES_PER_GIFT", default=5)
RECIPIENT_CHANGES_PER_HOUR = env.int("RECIPIENT_CHANGES_PER_HOUR", default=10)
RECIPIENT_CHANGES_WINDOW = 60 * 60
# The "not redeemed yet" nudges (issue 16, gifts/reminders.py): days after an emailed gift's delivery that its
# recipient is reminded, and that its gifter is told (with resend, change the address, send it to me instead); and
# how often (hours) the gifter may have the delivery email resent.
GIFT_NUDGE_RECIPIENT_DAYS = env.int("GIFT_NUDGE_RECIPIENT_DAYS", default=10)
GIFT_NUDGE_GIFTER_DAYS = env.int("GIFT_NUDGE_GIFTER_DAYS", default=14)
GIFTER_RESEND_INTERVAL_HOURS = env.int("GIFTER_RESEND_INTERVAL_HOURS", default=24)
# Failed typed codes allowed from everyone together per window (seconds); past it an ERROR is logged once per window
# and typed codes are paused (429) for GIFT_CODE_PAUSE_SECONDS while emailed links keep working. A botnet then gets
# at most ~2,000 guesses an hour, 48,000 a day: with 100,000 live codes in 2^40, 100,000 * 48,000 / 2^40 = 0.004
# expected hits a day. Honest typos (10 per address per window) stay far below it.
GIFT_CODE_GLOBAL_FAILURE_LIMIT = env.int("GIFT_CODE_GLOBAL_FAILURE_LIMIT", default=2000)
GIFT_CODE_GLOBAL_FAILURE_WINDOW = env.int("GIFT_CODE_GLOBAL_FAILURE_WINDOW", default=15 * 60)
GIFT_CODE_PAUSE_SECONDS = env.int("GIFT_CODE_PAUSE_SECONDS", default=60 * 60)
# Webhook endpoints must resolve to public addresses (no loopback, private, link-local or metadata targets);
# self-hosters whose merchant systems sit on a private network can allow those.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Merchant API requests allowed per API key per minute.
MERCHANT_API_RATE_LIMIT = env.int("MERCHANT_API_RATE_LIMIT", default=1000)
# Keys the gift codes (gifts/codes.py); rotating it invalidates every unredeemed code, so keep it apart from
# SECRET_KEY.
GIFT_CODE_SECRET = _required("GIFT_CODE_SECRET", "development-only-gift-code-secret")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Canonical base URL for links in emails: never derived from the request's Host header. Unset, it is this machine
# on the port the web process serves: WEB_PORT (bin/run's, since honcho gives every process a PORT of its own), else
# PORT, so `PORT=8802 make run` sends links that work.
_WEB_PORT = env.str("WEB_PORT", default="") or env.str("PORT", default="") or "8000"
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{_WEB_PORT}").rstrip("/")
# One deployment serves one business; its Cleeng-style publisher id.
GIFTSHOP_PUBLISHER_ID = env.str("GIFTSHOP_PUBLISHER_ID", default="123456789")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "giftshop",
    "emails",
    "accounts",
    "offers",
    "billing",
    "gifts",
]

MIDDLEWARE = [
    "giftshop.tracing.RequestIdMiddleware",
    "giftshop.metrics.RequestMetricsMiddleware",  # counts and times every request (see "Metrics" below)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the language cookie, else Accept-Language (see LANGUAGES)
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "giftshop.i18n.CustomerLanguageMiddleware",  # no cookie: a signed-in customer's stored language
    "giftshop.ratelimit.DeviceCookieMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "giftshop.chargebee.MerchantErrorMiddleware",
]

ROOT_URLCONF = "giftshop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # `{{ amount|money:currency }}` in every template without a {% load %} (giftshop/money.py).
            "builtins": ["giftshop.templatetags.money"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "giftshop.wsgi.application"

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'giftshop.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the demo database: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.Customer"
AUTHENTICATION_BACKENDS = ["accounts.backends.CustomerBackend"]
# The email is unique among accounts by a conditional constraint (a duplicate registration shares its account's
# address; see Customer.duplicate_of), which Django's check cannot see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Admin messages can carry a reissued gift code: keep them on the server, not in a readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:account"

# Languages (issue 17; README "Languages"). English is the source; catalogues in locale/<code>/LC_MESSAGES/django.po,
# committed compiled (.mo), so installing needs no gettext (only `make messages` does).
# Cookie-based, never a URL prefix (/de/...): the redeem links already emailed, the storefront and merchant API paths
# and the links beat sends must keep working unchanged whatever language the reader picks. The order of choice: the
# visitor's explicit choice (the language cookie, set by the switcher on every page through set_language), then a
# signed-in customer's stored language (Customer.locale, giftshop.i18n.CustomerLanguageMiddleware), then the
# browser's Accept-Language (LocaleMiddleware), then English. Emails are read in their reader's language (each
# kind's "language" function in EMAIL_KINDS).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("fr", "Français"), ("pl", "Polski")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates by name ("DATE_FORMAT"): English as the site always wrote it, the others as Django does (giftshop/formats).
FORMAT_MODULE_PATH = ["giftshop.formats"]
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
USE_I18N = True
USE_TZ = True
# Stored times are UTC; TIME_ZONE is only the default for displaying them (site settings can change it).
TIME_ZONE = env.str("SITE_TIME_ZONE", default="UTC")

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Redis (broker, results and cache) when configured; otherwise everything stays on this machine.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Email: any django-anymail ESP in production (EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend with its
# ANYMAIL_* settings in the environment); the console backend in development.
EMAIL_BACKEND = _required("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in env.ENVIRON.items() if key.startswith("ANYMAIL_")}
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(DATA_DIR / "emails"))  # for the file backend
if not DEBUG and EMAIL_BACKEND.startswith("anymail.backends.") and "WEBHOOK_SECRET" not in ANYMAIL:
    # anymail's tracking webhooks (bounces) are mounted: without a secret anyone could post fake bounces.
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET is not set (user:password for the ESP's tracking webhooks).")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Giftshop <gifts@localhost>")
# The outbox (emails/services.py), in seconds: transient failures retry after EMAIL_BACKOFF_BASE, doubling up to
# EMAIL_BACKOFF_CAP, EMAIL_MAX_ATTEMPTS attempts in all (about 3 hours by default); a row `sending` for longer
# than EMAIL_STUCK_AFTER belongs to a dead worker and is sent again.
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=12)
EMAIL_BACKOFF_BASE = env.int("EMAIL_BACKOFF_BASE", default=30)
EMAIL_BACKOFF_CAP = env.int("EMAIL_BACKOFF_CAP", default=30 * 60)
EMAIL_STUCK_AFTER = env.int("EMAIL_STUCK_AFTER", default=10 * 60)
# Sending is waiting on the provider: each send task sends over EMAIL_SEND_CONCURRENCY connections at once
# (threads), EMAIL_SEND_CHUNK emails per task; EMAIL_RATE_LIMIT (requests a second, all workers together; 0: none)
# is the provider's limit, and its "too many requests" pauses every sender (emails/throttle.py).
EMAIL_SEND_CONCURRENCY = env.int("EMAIL_SEND_CONCURRENCY", default=32)
EMAIL_SEND_CHUNK = env.int("EMAIL_SEND_CHUNK", default=200)
EMAIL_RATE_LIMIT = env.float("EMAIL_RATE_LIMIT", default=0.0)
# With a backend that has a batch call (emails.backends.PostmarkBatchBackend), this many messages a request.
EMAIL_BATCH_SIZE = env.int("EMAIL_BATCH_SIZE", default=25)
# Every kind of email the outbox sends, registered by the app that writes it (the outbox imports none of them):
# its admin label, the function that builds its templates' context when it is sent (templates/emails/<kind>-*),
# and optionally, called in the outbox's transaction, the one told that the provider accepted such an email ("sent",
# answering with the emails that follow from it) and the one told that it will not arrive ("undeliverable": bounced
# or failed for good). The keys are the values stored in Email.kind. "language" (issue 17) names the function that
# answers the language its reader reads it in (a gift's recipient: recipient_language); without one, EMAIL_LANGUAGE,
# the language of the account at the address (the gifter's, a customer's own).
EMAIL_LANGUAGE = "accounts.emails.addressee_language"
EMAIL_KINDS = {
    "gift_receipt": {"label": "Gift receipt (gifter)", "render": "gifts.emails.gift_receipt"},
    "order_receipt": {"label": "Order receipt", "render": "billing.emails.order_receipt"},
    "gift_delivery": {
        "label": "Gift delivery (recipient)",
        "render": "gifts.emails.gift_delivery",
        "language": "gifts.emails.recipient_language",
        "sent": "gifts.emails.delivery_sent",
        "undeliverable": "gifts.emails.delivery_undeliverable",
    },
    "gift_delivered": {"label": "Gift delivered (gifter)", "render": "gifts.emails.gift_delivered"},
    "gift_redeemed": {"label": "Gift redeemed (gifter)", "render": "gifts.emails.gift_redeemed"},
    "set_password": {"label": "Set your password (an account without one)", "render": "accounts.emails.set_password"},
    "confirm_address": {"label": "Confirm your address (a new account)", "render": "accounts.emails.confirm_address"},
    "erase_account": {"label": "Confirm erasing your account", "render": "accounts.emails.erase_account"},
    "claim_expiring": {
        "label": "Gift about to expire unredeemed (recipient)",
        "render": "gifts.emails.claim_expiring",
        "language": "gifts.emails.recipient_language",
    },
    "term_ending": {
        "label": "Gift term ending (recipient)",
        "render": "billing.emails.term_ending",
        "language": "gifts.emails.recipient_language",
    },
    "gift_expired": {"label": "Gift expired unredeemed (gifter)", "render": "gifts.emails.gift_expired"},
    "gift_bounced": {"label": "Gift delivery bounced (gifter)", "render": "gifts.emails.gift_bounced"},
    "gift_code_replaced": {"label": "Gift code replaced (gifter)", "render": "gifts.emails.gift_code_replaced"},
    "gift_cancelled": {"label": "Gift cancelled and refunded (gifter)", "render": "billing.emails.gift_cancelled"},
    # Issue 16: the recipient said no; the "not redeemed yet" nudges (gifts/reminders.py).
    "gift_declined": {"label": "Gift declined by its recipient (gifter)", "render": "gifts.emails.gift_declined"},
    "gift_nudge": {
        "label": "Gift not redeemed yet (recipient)",
        "render": "gifts.emails.gift_nudge",
        "language": "gifts.emails.recipient_language",
    },
    "gift_not_redeemed": {"label": "Gift not redeemed yet (gifter)", "render": "gifts.emails.gift_not_redeemed"},
}
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 15

# Payments (README "Taking payments"): PAYMENT_GATEWAY is `sandbox` (the default: moves no money) or `stripe`, which
# takes cards with Stripe's Payment Element (Stripe.js, from STRIPE_JS_URL, Stripe's own address) and needs the
# account's keys and the webhook endpoint's signing secret (for /payments/stripe/webhook/). STRIPE_API_BASE is
# Stripe's API (the tests point it at a fake on loopback; the pages' Content-Security-Policy allows exactly these
# two origins, and only where Stripe.js runs). A dotted path names any other gateway class.
_PAYMENT_GATEWAYS = {"sandbox": "billing.gateways.SandboxGateway", "stripe": "billing.stripe_gateway.StripeGateway"}
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="sandbox")
PAYMENT_GATEWAY = _PAYMENT_GATEWAYS.get(PAYMENT_GATEWAY, PAYMENT_GATEWAY)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
if PAYMENT_GATEWAY.endswith(".StripeGateway") and not DEBUG:
    for _name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f'{_name} is not set (PAYMENT_GATEWAY=stripe; see README "Taking payments").')
# A renewal the bank declined for authentication emails the customer a link to confirm it (billing/renewals.py).
EMAIL_KINDS = {
    **EMAIL_KINDS,
    "renewal_authentication": {
        "label": "Confirm a renewal payment (3-D Secure)",
        "render": "billing.emails.renewal_authentication",
    },
}

# Security headers; the HTTPS-only ones are on whenever DEBUG is off.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
_https = not DEBUG and env.bool("HTTPS", default=True)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_SSL_REDIRECT = _https and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health/"]

REST_FRAMEWORK = {
    # DRF's default is AllowAny; every API view states what it allows, and the default refuses.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["giftshop.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # X-Forwarded-For is trusted only behind a known number of proxies (0: never).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Giftshop API",
    "DESCRIPTION": "Gift subscriptions: the storefront (MediaStore) and merchant (Chargebee v2) contracts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is served from this site's own static files (drf-spectacular-sidecar), never a CDN: the docs work
    # offline and nobody else's server can change what runs on them. The split view loads its start-up script
    # from a URL, so the pages need no inline script under the Content-Security-Policy below.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Every response carries a Content-Security-Policy (django-csp): nothing loads from another origin, no inline
# script runs, no plugin, no <base> rewrite, no framing, and forms post only here. A view with stricter needs sets
# its own header (the redeem page), which the middleware leaves alone. Inline *styles* stay allowed: Swagger UI
# and Django admin set style attributes, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Celery: JSON only, UTC, late acks with prefetch 1 so a killed worker's task is redelivered.
# The filesystem broker ignores the host, but kombu warns at every connection when the URL names none.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=REDIS_URL or f"file://{(DATA_DIR / 'celery-results').as_posix()}"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "celery-broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    (DATA_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        # The exchange bindings; kombu's default is ./control, in whatever directory the process started.
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than any task's hard time limit, so an unacked task is not redelivered while it still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # A broker that drops packets must not hold a web request (publishing happens after commit) for long.
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
    }
# A failed publish is only logged: the outbox sweep sends what the lost task would have.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Stated rather than left to Celery's default, which changes in Celery 6: a task running when the broker connection
# drops finishes (every task here is idempotent and records its own progress in PostgreSQL).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
# Only past the hard time limit is the worker that claimed a `sending` row surely gone; resetting the row sooner
# would send a second copy while the first is still on its way. (Webhook deliveries are given back after 5 min.)
if min(EMAIL_STUCK_AFTER, 5 * 60) <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be shorter than EMAIL_STUCK_AFTER and 300 seconds.")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints is logged at INFO, not Celery's default WARNING: in development the console email backend prints
# every email the worker sends, and each one is not a warning.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# A customer's personal data copy (the account's "Download your data", the admin's action): each app's part.
PERSONAL_DATA = {
    "account": "accounts.personal_data.account",
    "cards": "accounts.personal_data.cards",
    "subscriptions": "accounts.personal_data.subscriptions",
    "transactions": "accounts.personal_data.transactions",
    "orders": "billing.personal_data.orders",
    "gifts": "gifts.personal_data.gifts",
}
# Erasing a customer's personal data (accounts/erasure.py: the admin's action, or the customer's own request confirmed
# by email): each app erases its part, in this order, in one transaction. The account's part goes last.
PERSONAL_DATA_ERASERS = {
    "orders": "billing.personal_data.erase_orders",
    "stripe_customers": "billing.personal_data.erase_stripe_customers",
    "gifts": "gifts.personal_data.erase_gifts",
    "gift_lists": "gifts.personal_data.erase_gift_lists",
    "emails": "emails.personal_data.erase_emails",
    "merchant_api_replays": "giftshop.personal_data.erase_idempotency_records",
    "account": "accounts.personal_data.erase_account",
}
# Days after a gift was redeemed, expired or cancelled until its personal note, signature and the recipient's address
# and names are removed (gifts/retention.py, daily by beat's "remove-ended-gift-details").
GIFT_DATA_RETENTION_DAYS = env.int("GIFT_DATA_RETENTION_DAYS", default=90)

# --- Bulk gift lists and group codes (issue 18) ---
# A list's most rows, the largest file accepted (bytes; pasted rows are bounded by DATA_UPLOAD_MAX_MEMORY_SIZE), and the
# gifts the background task makes per transaction (gifts/bulk.py). The gifter's "your gifts are ready" email.
BULK_MAX_ROWS = env.int("BULK_MAX_ROWS", default=5000)
BULK_MAX_FILE_BYTES = env.int("BULK_MAX_FILE_BYTES", default=5 * 1024 * 1024)
BULK_BATCH_SIZE = env.int("BULK_BATCH_SIZE", default=500)
EMAIL_KINDS["bulk_done"] = {"label": "Gift list ready (gifter)", "render": "gifts.emails.bulk_done"}
# What paying an order makes when it is not one gift or subscription (Order.fulfilment's "kind"), by dotted path: a
# payment completed later by Stripe's webhook or the browser's return makes it too.
ORDER_FULFILMENTS = {"bulk_list": "billing.bulk_sales.fulfil_list", "group_code": "billing.bulk_sales.fulfil_group"}
# --- end of bulk gift lists and group codes ---

# Readiness (GET /health/ready, manage.py healthcheck): each app's check, by dotted path. Seconds before a check
# fails: the beat's delivery sweep not run (it runs every DELIVERY_INTERVAL), a due gift or email still waiting.
HEALTH_CHECKS = {
    "database": "giftshop.health.database",
    "migrations": "giftshop.health.migrations",
    "cache": "giftshop.health.cache_reachable",
    "broker": "giftshop.celery.broker_reachable",
    "delivery": "gifts.health.delivery",
    "outbox": "emails.health.outbox",
}
HEALTH_SWEEP_MAX_AGE = env.int("HEALTH_SWEEP_MAX_AGE", default=120)
HEALTH_DELIVERY_MAX_AGE = env.int("HEALTH_DELIVERY_MAX_AGE", default=300)
HEALTH_OUTBOX_MAX_AGE = env.int("HEALTH_OUTBOX_MAX_AGE", default=900)
# Bearer token that shows /health/ready's details (each check's result); without it, only the status.
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="")

# Metrics (giftshop/metrics.py): GET /metrics for Prometheus, with METRICS_TOKEN as a bearer token (unset: 404).
# Every process of this machine records into files under PROMETHEUS_MULTIPROC_DIR (gunicorn's workers, a Celery
# worker's pool), which /metrics adds up; prometheus_client reads that variable when it is imported, so it is set here,
# before any app is loaded. Empty: each process keeps only its own (the tests). A Celery worker's main process serves
# its pool's metrics on CELERY_METRICS_ADDR:CELERY_METRICS_PORT (0: not served; no token there, so keep it private).
# METRICS_COLLECTORS: each app's gauges read from the database at each scrape, by dotted path.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(DATA_DIR / "metrics"))
if METRICS_DIR:
    Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)
    env.ENVIRON["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR
else:
    env.ENVIRON.pop("PROMETHEUS_MULTIPROC_DIR", None)  # set but empty would still turn the file mode on
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=9808)
CELERY_METRICS_ADDR = env.str("CELERY_METRICS_ADDR", default="0.0.0.0")  # noqa: S104 - a worker machine's own port
METRICS_COLLECTORS = {
    "outbox": "emails.metrics.outbox",
    "gifts": "gifts.metrics.gifts",
    "gift_code_budget": "gifts.metrics.code_budget",
    "webhooks": "giftshop.webhook_metrics.backlog",
}
# Prometheus may scrape a web machine directly over the private network, where there is no TLS to redirect to.
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]

# The beat schedule, in one place: every periodic job of the product.
# Sweeps select everything *overdue*, so beat or worker downtime is caught up on the next run; expiring a
# task after one interval keeps a backlog of identical sweeps from piling up behind a stopped worker.
# SWEEP_INTERVAL (seconds) paces the outbox sweep: how late a retry, or an email whose task was lost, may go out.
SWEEP_INTERVAL = env.float("SWEEP_INTERVAL", default=15.0)
# DELIVERY_INTERVAL: how often beat asks whether a gift is due (one index probe); a due gift waits at most this.
DELIVERY_INTERVAL = env.float("DELIVERY_INTERVAL", default=1.0)
CELERY_BEAT_SCHEDULE = {
    "deliver-due-gifts": {
        "task": "gifts.deliver_due_gifts",
        "schedule": DELIVERY_INTERVAL,
        "options": {"expires": max(DELIVERY_INTERVAL, 1.0)},
    },
    "send-due-emails": {
        "task": "gifts.send_due_emails",
        "schedule": SWEEP_INTERVAL,
        "options": {"expires": SWEEP_INTERVAL},
    },
    "expire-due-gifts": {"task": "gifts.expire_due_gifts", "schedule": 60.0, "options": {"expires": 60}},
    # Issue 16: what the gifter of a gift that expired unredeemed gets back, per offer (billing/claim_window.py).
    "settle-expired-gifts": {"task": "billing.settle_expired_gifts", "schedule": 60.0, "options": {"expires": 60}},
    "send-due-webhooks": {"task": "gifts.send_due_webhooks", "schedule": 30.0, "options": {"expires": 30}},
    "send-reminders": {"task": "gifts.send_reminders", "schedule": 900.0, "options": {"expires": 900}},
    # A redeemed gift's subscription with a later start is `future` (no access) until then; this starts it.
    "start-due-subscriptions": {"task": "gifts.start_due_subscriptions", "schedule": 60.0, "options": {"expires": 60}},
    "renew-due-subscriptions": {
        "task": "accounts.renew_due_subscriptions",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "reap-idempotency-keys": {
        "task": "accounts.reap_idempotency_keys",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "remove-ended-gift-details": {
        "task": "gifts.remove_ended_gift_details",
        "schedule": 86400.0,
        "options": {"expires": 3600},
    },
}

# Error reporting: SENTRY_DSN turns on sentry-sdk (web requests, tasks, error log lines), scrubbed of codes, tokens,
# card data, notes and addresses (giftshop/sentry.py). SENTRY_ENVIRONMENT / SENTRY_RELEASE label the events.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry.init(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=""),
        release=env.str("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# LOG_FORMAT=json: one JSON object per line (timestamp, level, logger, message, request_id, gift_id, task), for a
# log pipeline; "plain" (the default) for people. Either way every line carries the request id that the web request
# (or beat's task) began with, across the tasks it enqueued (giftshop/tracing.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
if LOG_FORMAT == "json":
    logging.captureWarnings(True)  # Python's warnings become log lines too (logger py.warnings), not loose text
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "giftshop.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s",
        },
        "json": {"()": "giftshop.logs.JsonFormatter"},
    },
    # Gift codes and link tokens are masked in every line (giftshop/logs.py), whoever logs them.
    "filters": {
        "redact_secrets": {"()": "giftshop.logs.RedactSecrets"},
        "context": {"()": "giftshop.logs.ContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint (certificates) narrates each step of a layout, and loads its stylesheet at import, at INFO.
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
