"""Auralign settings: every knob is an environment variable, read here and nowhere else.

Absent variables fall back to the embedded default (SQLite and local files under var/, Celery
on kombu's filesystem transport). Production sets DATABASE_URL, CELERY_BROKER_URL,
AURALIGN_STORAGE=s3 + S3_*, SECRET_KEY and ALLOWED_HOSTS (see README.md).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]  # repo root (manage.py lives here)
VAR_DIR = Path(os.environ.get("AURALIGN_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


# --- core -------------------------------------------------------------------------------------
TESTING = env_bool("AURALIGN_TESTING")  # the test suite and its subprocesses (plain HTTP)
DEMO = env_bool("AURALIGN_DEMO")  # `make demo` turns this on: DEBUG, a throwaway SECRET_KEY
DEBUG = env_bool("DEBUG", default=DEMO)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEMO or DEBUG or TESTING:
        SECRET_KEY = "insecure-demo-key-only-for-local-use-" + "x" * 24
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set (only the demo and tests may run without it)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if (DEMO or DEBUG) else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "auralign.core",
    "auralign.accounts",
    "auralign.media",
    "auralign.rubrics",
    "auralign.policies",
    "auralign.dialogues",
    "auralign.campaigns",
    "auralign.generation",
    "auralign.annotation",
    "auralign.quality",
    "rlhf_export",
    "annotator_ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- database ---------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'auralign.sqlite3'}",  # empty = unset
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL + a busy timeout let the web process and the local worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, except that a connection used less than DB_HEALTH_CHECK_IDLE_SECONDS ago
    # is not health-checked again (auralign/core/postgresql/base.py); 0 checks every request.
    DATABASES["default"]["ENGINE"] = "auralign.core.postgresql"
DB_HEALTH_CHECK_IDLE_SECONDS = float(os.environ.get("DB_HEALTH_CHECK_IDLE_SECONDS", "1"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The annotation hot path's hand-written SQL runs as server-side prepared statements on
# PostgreSQL (auralign.core.sql). Turn off behind a pooler that cannot keep them (PgBouncer in
# transaction mode before 1.21).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "auralign.core.postgresql" and DB_PREPARED_STATEMENTS:
    # psycopg prepares only when a threshold is set; Django's own cursors bind on the client and
    # never prepare, so only the statements that ask for it (prepare=True) are prepared.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
NODE_MODULES_DIR = BASE_DIR / "annotator_ui" / "node_modules"
STATICFILES_DIRS = [("vendor", NODE_MODULES_DIR)] if NODE_MODULES_DIR.exists() else []
WHITENOISE_USE_FINDERS = DEBUG or TESTING

AURALIGN_STORAGE = os.environ.get("AURALIGN_STORAGE", "local")  # "local" | "s3"
MEDIA_ROOT = Path(os.environ.get("AURALIGN_MEDIA_ROOT", VAR_DIR / "media"))
S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
S3_BUCKET = os.environ.get("S3_BUCKET", "auralign")
S3_REGION = os.environ.get("S3_REGION", "us-east-1")
S3_ACCESS_KEY_ID = os.environ.get("S3_ACCESS_KEY_ID") or None
S3_SECRET_ACCESS_KEY = os.environ.get("S3_SECRET_ACCESS_KEY") or None
# Presigned / signed media URLs live this long; an annotator's page refreshes them.
MEDIA_URL_TTL_SECONDS = int(os.environ.get("MEDIA_URL_TTL_SECONDS", "900"))


def storage_backend(kind: str) -> dict:
    if kind == "s3":
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": S3_ENDPOINT_URL,
                "region_name": S3_REGION,
                "access_key": S3_ACCESS_KEY_ID,
                "secret_key": S3_SECRET_ACCESS_KEY,
                "querystring_auth": True,
                "querystring_expire": MEDIA_URL_TTL_SECONDS,
                "file_overwrite": True,  # keys are content addressed: same key, same bytes
                "default_acl": None,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        }
    if kind == "local":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": "/media/"},
        }
    raise ImproperlyConfigured(f"AURALIGN_STORAGE must be 'local' or 's3', not {kind!r}")


STORAGES = {
    "default": storage_backend(AURALIGN_STORAGE),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- audio import limits ------------------------------------------------------------------------
AUDIO_MAX_BYTES = int(os.environ.get("AUDIO_MAX_BYTES", str(50 * 1024 * 1024)))
AUDIO_MAX_SECONDS = float(os.environ.get("AUDIO_MAX_SECONDS", "300"))
AUDIO_MIN_SAMPLE_RATE = 8000
AUDIO_MAX_SAMPLE_RATE = 96000
AUDIO_MAX_CHANNELS = 2
MANIFEST_MAX_BYTES = int(os.environ.get("MANIFEST_MAX_BYTES", str(200 * 1024 * 1024)))

# --- celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_FILESYSTEM_DIR = VAR_DIR / "celery"
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_BEAT_RECONCILE_SECONDS = int(os.environ.get("RECONCILE_SECONDS", "60"))
# Redis redelivers a task not acknowledged within this many seconds (must exceed the longest task).
CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(6 * 3600)))

# --- sampling (auralign.generation, docs/sampling.md) ----------------------------------------------
GENERATION_GPU_QUEUE = os.environ.get("GENERATION_GPU_QUEUE", "gpu")  # a policy's config.queue overrides it
GENERATION_INGEST_QUEUE = os.environ.get("GENERATION_INGEST_QUEUE", "cpu")  # dispatch and ingest
GENERATION_JOB_DIALOGUES = int(os.environ.get("GENERATION_JOB_DIALOGUES", "8"))  # dialogues per GPU job
# Jobs on the queues per campaign at once; more are sent as results come in. Keep it near 2x the
# number of GPU workers so no job waits on a queue longer than GENERATION_DISPATCH_TIMEOUT_S.
GENERATION_MAX_JOBS_IN_FLIGHT = int(os.environ.get("GENERATION_MAX_JOBS_IN_FLIGHT", "16"))
# A dispatched task with no result after this long is re-dispatched by reconcile (its message was
# lost or its worker died); after GENERATION_MAX_ATTEMPTS dispatches it is marked failed.
GENERATION_DISPATCH_TIMEOUT_S = int(os.environ.get("GENERATION_DISPATCH_TIMEOUT_S", str(2 * 3600)))
GENERATION_MAX_ATTEMPTS = int(os.environ.get("GENERATION_MAX_ATTEMPTS", "3"))

# --- training (rlhf_export, docs/training.md) -----------------------------------------------------
TRAINING_QUEUE = os.environ.get("TRAINING_QUEUE", "train")  # the Django-free auralign.train.run task
TRAINING_PLATFORM_QUEUE = os.environ.get("TRAINING_PLATFORM_QUEUE", "cpu")  # registering results
TRAINING_SCORE_QUEUE = os.environ.get("TRAINING_SCORE_QUEUE", "cpu")  # reward-model scoring of a campaign
# A queued run whose training task has not started this long after dispatch is sent again by
# reconcile (its message expires at the same moment, so it never runs twice); after
# TRAINING_MAX_ATTEMPTS dispatches the run fails.
TRAINING_DISPATCH_TIMEOUT_S = int(os.environ.get("TRAINING_DISPATCH_TIMEOUT_S", str(6 * 3600)))
TRAINING_MAX_ATTEMPTS = int(os.environ.get("TRAINING_MAX_ATTEMPTS", "3"))
# A running run that reports no new metrics for this long has lost its worker or its result: failed.
TRAINING_STALE_S = int(os.environ.get("TRAINING_STALE_S", str(6 * 3600)))

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "auralign.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "auralign.accounts.permissions.TokenWriteAllowed",
    ],
    "DEFAULT_SCHEMA_CLASS": "auralign.core.api.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "auralign.core.api.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "auralign.core.negotiation.ContentNegotiation",
    "DEFAULT_THROTTLE_RATES": {"login": "20/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Auralign API",
    "DESCRIPTION": "Preference collection for spoken replies of audio language models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served locally: the docs work offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two choice sets share the field name "kind": name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "ExportKindEnum": "rlhf_export.models.ExportSnapshot.Kind",
        "TrainingKindEnum": "rlhf_export.models.TrainingRun.Kind",
    },
}

# --- security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not TESTING)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not TESTING)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not TESTING)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 30)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS preload is a commitment for the whole domain: opt in with SECURE_HSTS_PRELOAD=1.
SILENCED_SYSTEM_CHECKS = [] if env_bool("SECURE_HSTS_PRELOAD", False) else ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

API_TOKEN_DEFAULT_TTL = timedelta(days=int(os.environ.get("API_TOKEN_TTL_DAYS", "90")))
# A process keeps a token row this long (auralign.accounts.selectors): a revocation made in
# another process takes effect within it. 0 reads the token on every request.
API_TOKEN_CACHE_SECONDS = float(os.environ.get("API_TOKEN_CACHE_SECONDS", "5"))
# "My campaigns" shows each campaign's items done; counting them reads every item, so the counts
# are cached this long (auralign.annotation.selectors.campaign_item_counts). 0 counts every time.
CAMPAIGN_PROGRESS_CACHE_SECONDS = float(os.environ.get("CAMPAIGN_PROGRESS_CACHE_SECONDS", "30"))
