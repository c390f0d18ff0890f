"""The production settings (`autorespond.settings`, all from the environment), plus the
benchmark's baseline views in the URL map."""

from autorespond.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.ingest_api_support.urls"
