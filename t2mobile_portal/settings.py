"""Django settings for the IconTech ↔ T2Mobile partner gateway.

Every value is read through one ``environ.Env`` (django-environ); ``.env`` is read when present and
``.env.example`` lists every name. Production secrets have no defaults: with ``DEBUG=false`` a
missing ``SECRET_KEY`` stops the process at start-up.
"""

from __future__ import annotations

import os
import warnings
from email.utils import parseaddr
from pathlib import Path

import environ

from core.redis_roles import redis_caches, redis_role_urls

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# No default, DEBUG or not: `make run` writes a key of its own into .run/ and passes it; any other
# start without one stops here, naming the variable.
SECRET_KEY = env("SECRET_KEY")
# Production start-up (DEBUG off) needs the Zoho credentials and, unless the partner's API keys and
# signing secret are managed in the admin (PARTNER_CREDENTIALS_IN_ADMIN=true), T2MOBILE_API_KEYS and
# T2MOBILE_WEBHOOK_SECRET (t2mobile_portal/checks.py). The test suite turns the check off.
REQUIRE_CREDENTIALS = env.bool("REQUIRE_CREDENTIALS", default=not DEBUG)
PARTNER_CREDENTIALS_IN_ADMIN = env.bool("PARTNER_CREDENTIALS_IN_ADMIN", default=False)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
TIME_ZONE = env("TIME_ZONE", default="Africa/Lagos")
USE_TZ = True
LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["core.formats"]  # the admin's times carry their zone
USE_I18N = False

INSTALLED_APPS = [
    # django.contrib.admin with the back-office site (overview, rate-limited login, staff groups).
    "t2mobile_portal.apps.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served by us, not from a CDN
    "django_celery_beat",
    # Ours, bottom of the layers first (ARCHITECTURE.md), so that an app's admin module is loaded
    # after the admin of the app below it (webhooks/admin.py extends the partner page).
    "integrations.apps.IntegrationsConfig",
    "partners.apps.PartnersConfig",
    "webhooks.apps.WebhooksConfig",
    "catalogue.apps.CatalogueConfig",
    "orders.apps.OrdersConfig",
    "t2mobile_portal.apps.PortalConfig",
]

MIDDLEWARE = [
    # Outermost: it counts and times every answer, the other middlewares' own answers too.
    "core.instruments.RequestMetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.PartnerApiGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS, the docs' Swagger UI) under gunicorn, where nothing else serves them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "t2mobile_portal.urls"
WSGI_APPLICATION = "t2mobile_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # make run's embedded database: web, worker and beat share one file.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Fail fast when PostgreSQL is unreachable, so the API answers 503 instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
# Parallel test runs on one machine (several developers, CI) each get their own test database.
if env("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Broker, cache and limits on database numbers n, n+1, n+2 of REDIS_URL's Redis, so that clearing
# the cache never drops a queued job nor resets a limit (core/redis_roles.py).
REDIS_URL = env("REDIS_URL", default="")
_redis = redis_role_urls(
    REDIS_URL,
    broker=env("CELERY_BROKER_URL", default=""),
    cache=env("REDIS_CACHE_URL", default=""),
    limits=env("REDIS_LIMITS_URL", default=""),
)
REDIS_CACHE_URL = _redis["cache"]
REDIS_LIMITS_URL = _redis["limits"]
CACHES = redis_caches(
    cache_url=REDIS_CACHE_URL, limits_url=REDIS_LIMITS_URL, key_prefix=env("CACHE_KEY_PREFIX", default="t2m")
)
RATELIMIT_USE_CACHE = "limits"  # django-ratelimit (the admin login)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise finds the files in the installed apps itself, so serving needs no collectstatic step
# (the Procfile's release step only migrates); a collected STATIC_ROOT is served too when present.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)  # STATIC_ROOT not collected

# --- Security -------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"
# The partner API refuses bodies over 64 KiB with 413 PAYLOAD_TOO_LARGE.
PARTNER_API_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- The partner ----------------------------------------------------------------------------------
PARTNER_ID = env("PARTNER_ID", default="ICONTECH001")
PARTNER_NAME = env("PARTNER_NAME", default="T2Mobile")
PARTNER_PREFIX = env("PARTNER_PREFIX", default="T2M")  # its Zoho sales orders are T2M-<orderId>
# Addresses or networks of the reverse proxies in front of gunicorn (nginx). X-Forwarded-For is
# believed only on connections from them (core/net.py); empty: the connection's address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
RATELIMIT_IP_META_KEY = "core.net.client_address"  # django-ratelimit's key="ip" (admin login)
T2MOBILE_API_KEYS = env.list("T2MOBILE_API_KEYS", default=[])
T2MOBILE_WEBHOOK_URL = env("T2MOBILE_WEBHOOK_URL", default="")
T2MOBILE_WEBHOOK_SECRET = env("T2MOBILE_WEBHOOK_SECRET", default="")
T2MOBILE_RATE_LIMIT = env("T2MOBILE_RATE_LIMIT", default="100/m")
AUTH_FAILURE_RATE_LIMIT = env("AUTH_FAILURE_RATE_LIMIT", default="20/m")
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=72)
# Admin login attempts (POSTs) per client IP; the next one gets a 429 page.
ADMIN_LOGIN_RATE_LIMIT = env("ADMIN_LOGIN_RATE_LIMIT", default="10/m")
CURRENCY = "NGN"

# --- Zoho -----------------------------------------------------------------------------------------
ZOHO_ACCOUNTS_URL = env("ZOHO_ACCOUNTS_URL", default="https://accounts.zoho.com")
ZOHO_API_BASE = env("ZOHO_API_BASE", default="https://www.zohoapis.com/inventory/v1")
ZOHO_CLIENT_ID = env("ZOHO_CLIENT_ID", default="")
ZOHO_CLIENT_SECRET = env("ZOHO_CLIENT_SECRET", default="")
ZOHO_REFRESH_TOKEN = env("ZOHO_REFRESH_TOKEN", default="")
ZOHO_ORGANIZATION_ID = env("ZOHO_ORGANIZATION_ID", default="")
ZOHO_RATE_LIMIT = env("ZOHO_RATE_LIMIT", default="90/m")
ZOHO_MAX_CONCURRENCY = env.int("ZOHO_MAX_CONCURRENCY", default=5)
ZOHO_DAILY_LIMIT = env.int("ZOHO_DAILY_LIMIT", default=10000)
# The sales order's custom field for the activation reference: by id (wins) or by label; else the notes.
ZOHO_ACTIVATION_FIELD_ID = env("ZOHO_ACTIVATION_FIELD_ID", default="")
ZOHO_ACTIVATION_FIELD = env("ZOHO_ACTIVATION_FIELD", default="")
# per_customer: one Zoho contact per T2Mobile customer (up to 4 calls for a new customer's order, 2
# after); partner: every sales order on one contact for the partner (2 calls for every order).
ZOHO_CUSTOMER_MODE = env("ZOHO_CUSTOMER_MODE", default="per_customer")
if ZOHO_CUSTOMER_MODE not in ("per_customer", "partner"):
    raise environ.ImproperlyConfigured(
        f"ZOHO_CUSTOMER_MODE must be per_customer or partner, not {ZOHO_CUSTOMER_MODE!r}"
    )
# ours: a sales order is numbered <partner prefix>-<orderId> (Zoho refuses a second one with that
# number); auto: Zoho numbers it and reference_number carries <partner prefix>-<orderId>.
ZOHO_SALES_ORDER_NUMBERING = env("ZOHO_SALES_ORDER_NUMBERING", default="ours")
if ZOHO_SALES_ORDER_NUMBERING not in ("ours", "auto"):
    raise environ.ImproperlyConfigured(
        f"ZOHO_SALES_ORDER_NUMBERING must be ours or auto, not {ZOHO_SALES_ORDER_NUMBERING!r}"
    )
# The key activation references are derived from (once per order, then stored); SECRET_KEY if unset.
ACTIVATION_REFERENCE_KEY = env("ACTIVATION_REFERENCE_KEY", default="")
DEFAULT_TENURES = env.list("DEFAULT_TENURES", default=["1_MONTH", "12_MONTHS"])

# --- Scheduled work and webhooks ------------------------------------------------------------------
REMINDER_DAYS = [int(day) for day in env.list("REMINDER_DAYS", default=["7"])]
# Only where asked for (`make run` and the tests ask): DEBUG alone never lets webhooks reach private
# addresses.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)
# Seconds to wait before each retry after a failed delivery (webhooks.md); tests compress it.
WEBHOOK_RETRY_SCHEDULE = tuple(
    env.list("WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400])
)
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.1)  # up to +10 % of each wait
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# A claimed event is leased to one worker for this long; must exceed the timeout by a margin. A
# webhooks worker killed mid-delivery delays its event by at most this plus one dispatch interval.
WEBHOOK_CLAIM_LEASE_SECONDS = env.float("WEBHOOK_CLAIM_LEASE_SECONDS", default=45.0)
# Retries due within this many seconds get a Celery countdown; later ones wait in the database.
WEBHOOK_COUNTDOWN_MAX_SECONDS = env.float("WEBHOOK_COUNTDOWN_MAX_SECONDS", default=45.0)
WEBHOOK_RETRY_AFTER_MAX_SECONDS = env.float("WEBHOOK_RETRY_AFTER_MAX_SECONDS", default=86400.0)
WEBHOOK_DISPATCH_BATCH_SIZE = env.int("WEBHOOK_DISPATCH_BATCH_SIZE", default=500)  # per partner per run
# Events one delivery claims, sends (on up to WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER lanes) and records at
# once; its cost (a claim, a secrets read, a record transaction) is shared by this many events.
WEBHOOK_DELIVERY_BATCH_SIZE = env.int("WEBHOOK_DELIVERY_BATCH_SIZE", default=100)
# Attempts to one partner at once; keep it below the webhooks worker's pool size (16 in the Procfile),
# so that an endpoint that starts hanging never holds every thread.
WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_PARTNER", default=8)
WEBHOOK_SENT_RETENTION_DAYS = env.int("WEBHOOK_SENT_RETENTION_DAYS", default=30)
WEBHOOK_FAILED_RETENTION_DAYS = env.int("WEBHOOK_FAILED_RETENTION_DAYS", default=90)
# An endpoint whose every attempt failed this long, with no success in between, is disabled (webhooks.md).
WEBHOOK_DISABLE_AFTER_DAYS = env.float("WEBHOOK_DISABLE_AFTER_DAYS", default=5)

# --- Staff alerts (webhooks.md, "Endpoint health and alerts"): Django's mail_admins ----------------
# ADMINS: "Name <email>,…" (or bare addresses). EMAIL_URL: django-environ's email URL (smtp://…);
# under DEBUG the console backend prints the mails, otherwise without EMAIL_URL nothing is sent.
ADMINS = [parseaddr(entry) for entry in env.list("ADMINS", default=[]) if parseaddr(entry)[1]]
SERVER_EMAIL = env("SERVER_EMAIL", default="t2mobile-gateway@localhost")
_EMAIL_URL = env("EMAIL_URL", default="") or ("consolemail://" if DEBUG else "dummymail://")
vars().update(env.email_url_config(_EMAIL_URL))
EMAIL_SUBJECT_PREFIX = env("EMAIL_SUBJECT_PREFIX", default="[T2Mobile gateway] ")
SENTRY_DSN = env("SENTRY_DSN", default="")
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- Celery ---------------------------------------------------------------------------------------
# Without a broker server (``make run`` on a bare machine) Celery falls back to kombu's filesystem
# transport in ``.run/broker``.
_BROKER_DIR = BASE_DIR / ".run" / "broker"
# "localhost" is only a name (the files are local): without one kombu warns on every publish.
CELERY_BROKER_URL = _redis["broker"] or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any countdown we hand to Celery; long waits live in the database instead.
        "visibility_timeout": 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
elif CELERY_BROKER_URL.startswith("filesystem"):
    for _sub in ("in", "processed"):
        os.makedirs(_BROKER_DIR / _sub, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        # the exchange → queue table; kombu's default is ./control, beside the code
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "orders.provision_order": {"queue": "provisioning"},
    "webhooks.deliver_webhook": {"queue": "webhooks"},
}
# An intake must not hang when the broker is down: the order is stored and the sweeper queues it.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers and beat wait for a Redis outage of any length and resume by themselves (Celery's default
# gives up after 100 retries, about 50 minutes, and the process exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- DRF and OpenAPI ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["partners.authentication.PartnerApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["partners.authentication.IsPartner"],
    "DEFAULT_THROTTLE_CLASSES": ["partners.throttling.PartnerRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.PartnerJsonParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JsonFallbackContentNegotiation",
    "EXCEPTION_HANDLER": "core.errors.partner_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IconTech partner API for T2Mobile",
    "DESCRIPTION": (
        "Catalogue, order intake with idempotency keys, order status and health. Every non-2xx "
        "answer uses the error envelope `{success, errorCode, message, details, requestId}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["partners.authentication.IsPartnerOrStaff"],
    "SERVE_AUTHENTICATION": [
        "partners.authentication.PartnerApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
    "AUTHENTICATION_WHITELIST": [],
    # drf-spectacular-sidecar: the docs page loads its assets from /static/, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The events API's choice sets by name (the orders' "type" and "status" are other sets).
    "ENUM_NAME_OVERRIDES": {
        "EventTypeEnum": "webhooks.models.WebhookLog.EventType",
        "DeliveryStatusEnum": "webhooks.models.WebhookLog.Status",
        "UpDownEnum": ["ok", "down"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.contract_paths_and_headers",
    ],
}

# --- Logging: one JSON object per line on stdout ---------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# "json" (production: one object per line, time in ISO 8601 UTC) or "human" (`make run` sets it).
LOG_FORMAT = env("LOG_FORMAT", default="json")
if LOG_FORMAT not in ("json", "human"):
    raise environ.ImproperlyConfigured(f"LOG_FORMAT must be json or human, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "core.logging.UtcJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "human": {"()": "core.logging.HumanFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # Its DEBUG lines print whole request URLs, and Zoho's contact search puts the customer's
        # email in the query string: never below INFO, whatever LOG_LEVEL says.
        "urllib3": {"level": "INFO"},
    },
}

if SENTRY_DSN:  # pragma: no cover - optional; the Django and Celery integrations switch on by themselves
    import sentry_sdk

    sentry_sdk.init(dsn=SENTRY_DSN, send_default_pii=False, environment=env("SENTRY_ENVIRONMENT", default="production"))
