"""Settings, all from the environment (django-environ).

Every variable is documented in `.env.example`. A `.env` file in the project root is read when
present: `make run` and `make test` write one with freshly generated keys on first use, so a new
machine needs no manual setup and no key is ever committed.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Local state of embedded runs: SQLite file, broker folder, certificates, demo logins. VAR_DIR
# moves it, so two `make run`s (or a test of the launcher) on one checkout do not share it.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Only for its static files: with "ninja" installed, /api/v1/docs serves the Swagger UI
    # assets django-ninja ships instead of loading them from a CDN, so the docs work offline.
    "ninja",
    "autorespond",
    "integrations.salesforce",
]

MIDDLEWARE = [
    # First: it answers the API's oversized bodies before anything reads them, and turns any
    # non-JSON error under /api/ (a 404 page, a DEBUG traceback) into the API's error shape.
    "autorespond.middleware.ApiGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "autorespond.urls"
WSGI_APPLICATION = "autorespond.wsgi.application"

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

# SQLite is the embedded default so `make run` needs no server; production sets DATABASE_URL to
# PostgreSQL. TEST_DATABASE_NAME lets parallel test runs on one server keep out of each other's way.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Persistent connections: a new PostgreSQL connection per request costs more than the request's
# own statements. Health checks make a connection that died while idle (a database restart) be
# replaced at the start of the next request instead of failing it.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True))
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
# Server-side parameter binding lets psycopg prepare a statement once a connection has run it
# `DB_PREPARE_THRESHOLD` times (psycopg's default, 5): PostgreSQL then skips parsing and planning
# it, which halves the database's CPU of an intake POST (its statements are the same every time;
# see README, "Ingestion API" under Benchmarks). Django leaves both off by default for
# transaction-mode connection poolers (PgBouncer without max_prepared_statements), which cannot
# keep a session's prepared statements: behind one, set DB_SERVER_SIDE_BINDING=false.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_SERVER_SIDE_BINDING", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": True,
            "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=5),
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server's processes and the worker write one file. WAL lets readers go on while
    # one writes; IMMEDIATE takes the write lock when a transaction begins, so a writer that
    # must wait does so in the busy timeout (seconds) instead of failing with "database is
    # locked" when a read-then-write transaction tries to upgrade its lock (Django's SQLite
    # notes). synchronous=NORMAL is the durability WAL is designed for.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)

# Ingestion API: largest JSON body accepted (bytes); larger gets 413 with a field-level message.
# The API reads bodies itself (at most this many bytes), so Django's own upload limit
# (DATA_UPLOAD_MAX_MEMORY_SIZE) never decides for it.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# Seconds a client is told to wait (Retry-After) when the database is unreachable at intake.
API_RETRY_AFTER_SECONDS = env.int("API_RETRY_AFTER_SECONDS", default=5)
# Seconds a server process remembers an API key it found active, saving each request a database
# round trip: a key revoked in the admin is refused by the other processes within this time
# (at once by the process that revoked it). 0 looks every key up on every request.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=5)

# Field encryption (Fernet). The first key encrypts; every key decrypts, so keys can be rotated:
# put the new key first, run `manage.py rotate_encryption_keys`, then drop the old key.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")

# Celery. Production uses Redis; the embedded default is kombu's filesystem transport, which needs
# no server, so tasks still run in a real worker process under `make run`.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="autorespond")
_broker_folder = str(VAR_DIR / "broker")
if CELERY_BROKER_URL.startswith("filesystem") or DATABASES["default"]["NAME"].startswith(
    str(VAR_DIR)
):
    (VAR_DIR / "broker").mkdir(parents=True, exist_ok=True)
# The longest retry delay of a sync (see integrations.salesforce.sync.runner) must stay below the
# visibility timeout, or Redis would redeliver a task that is only waiting for its countdown.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 60 * 60)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": _broker_folder,
        "data_folder_out": _broker_folder,
        "processed_folder": _broker_folder,
        "control_folder": str(VAR_DIR / "broker" / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # Keeps parallel test runs (and several deployments on one Redis) apart.
        "global_keyprefix": env.str("CELERY_KEY_PREFIX", default=""),
        # A Redis that vanishes without closing its sockets (a host gone, a dropped flow) must
        # not block a blocking read forever, such as the pending BRPOP the worker drains when
        # it tears a lost connection down (celery/celery#9705). 30 s is far above BRPOP's own
        # 1 s wait; keepalive lets the kernel notice a dead peer on idle sockets.
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
    }
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A lost broker is waited for, however long it is away (Celery's default gives up after 100
# attempts, about 45 minutes, and the worker exits); the sweeper re-sends what was due meanwhile.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Syncs running when the connection drops finish their Salesforce write and record it on their
# InquirySync row; the row, not the message, is the truth, so a redelivered message finds the
# work done. Cancelling them (Celery 6's default) would cut Salesforce calls off mid-flight.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery's Django fixup closes the database connection before and after every task unless this
# is set, so every drain paid a new PostgreSQL connection. With it the fixup closes them only
# every this many tasks, and autorespond/celery.py treats each task like a request instead
# (CONN_MAX_AGE and CONN_HEALTH_CHECKS apply, as in the web processes).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BEAT_SCHEDULE: dict = {
    "salesforce-sweep-due-syncs": {
        "task": "integrations.salesforce.tasks.sweep_due_syncs",
        "schedule": env.int("SYNC_SWEEP_SECONDS", default=10),
    },
    "salesforce-validate-all-connections": {
        "task": "integrations.salesforce.tasks.validate_all_connections",
        "schedule": crontab(minute=0, hour=env.int("VALIDATE_ALL_HOUR_UTC", default=4)),
    },
}

# The sync engine (docs/architecture.md, "Scheduling"). A worker's lease on the syncs it runs
# lasts SYNC_LEASE_SECONDS and a heartbeat renews it every quarter of that, so a killed worker's
# syncs are free again within this many seconds. A drain takes up to SYNC_BATCH_SIZE due syncs
# of one org at once (200 = Salesforce's records per write; 1 = one inquiry per task). The
# sweeper skips rows whose message was sent less than SYNC_ENQUEUED_GRACE_SECONDS ago.
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=15)
SYNC_BATCH_SIZE = max(1, min(200, env.int("SYNC_BATCH_SIZE", default=200)))
SYNC_ENQUEUED_GRACE_SECONDS = env.int("SYNC_ENQUEUED_GRACE_SECONDS", default=15)
# A backlog of one org is drained by up to this many workers at once (the others stay free for
# other orgs).
SYNC_DRAINS_PER_ORG = env.int("SYNC_DRAINS_PER_ORG", default=3)
# Drains of small batches (fewer than SYNC_BATCH_SIZE due) run at most this many at once over
# all orgs; the other orgs wait in line, oldest first, and their batches grow meanwhile.
SYNC_SMALL_DRAINS = env.int("SYNC_SMALL_DRAINS", default=4)
# A drain goes on with its org's next batches for up to this many seconds, then queues its
# continuation behind other orgs' drains (0 = one batch per task).
SYNC_DRAIN_SECONDS = env.float("SYNC_DRAIN_SECONDS", default=5)
# Per-org circuit breaker: the first probe after an outage, and the longest wait between probes.
SALESFORCE_BREAKER_FIRST_PROBE_SECONDS = env.float(
    "SALESFORCE_BREAKER_FIRST_PROBE_SECONDS", default=5
)
SALESFORCE_BREAKER_MAX_PROBE_SECONDS = env.float("SALESFORCE_BREAKER_MAX_PROBE_SECONDS", default=20)
# API budget: the owner is emailed once at the warn share of the org's daily API requests; syncs
# pause at the pause share and resume by themselves (checked every BUDGET_RECHECK_SECONDS).
SALESFORCE_BUDGET_WARN_SHARE = env.float("SALESFORCE_BUDGET_WARN_SHARE", default=0.80)
SALESFORCE_BUDGET_PAUSE_SHARE = env.float("SALESFORCE_BUDGET_PAUSE_SHARE", default=0.95)
SALESFORCE_BUDGET_RECHECK_SECONDS = env.float("SALESFORCE_BUDGET_RECHECK_SECONDS", default=300)
# The org's API usage is written to its connection row at most this often per worker process.
SALESFORCE_USAGE_WRITE_SECONDS = env.float("SALESFORCE_USAGE_WRITE_SECONDS", default=30)

# Salesforce connected app. Production and sandbox logins are the real hosts by default;
# `make run` points them at the local emulator.
SALESFORCE_CLIENT_ID = env.str("SALESFORCE_CLIENT_ID", default="")
SALESFORCE_CLIENT_SECRET = env.str("SALESFORCE_CLIENT_SECRET", default="")
SALESFORCE_LOGIN_URL = env.str("SALESFORCE_LOGIN_URL", default="https://login.salesforce.com")
SALESFORCE_SANDBOX_LOGIN_URL = env.str(
    "SALESFORCE_SANDBOX_LOGIN_URL", default="https://test.salesforce.com"
)
SALESFORCE_API_VERSION = env.str("SALESFORCE_API_VERSION", default="59.0")
# A CA bundle to trust for Salesforce hosts: only set for the local emulator's own CA.
SALESFORCE_CA_BUNDLE = env.str("SALESFORCE_CA_BUNDLE", default="")
SALESFORCE_HTTP_TIMEOUT = env.float("SALESFORCE_HTTP_TIMEOUT", default=30.0)
# My Domain hosts are only accepted when they match Salesforce's own host patterns; the emulator
# run adds its loopback host here.
SALESFORCE_EXTRA_LOGIN_HOSTS = env.list("SALESFORCE_EXTRA_LOGIN_HOSTS", default=[])

# Where the service is served (e.g. https://leadsync.example.com), for links in emails.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000" if DEBUG else "")

DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Auto-Respond <noreply@localhost>")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # authlib and urllib3 log request bodies at DEBUG, which would include tokens.
        "authlib": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
