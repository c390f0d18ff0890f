"""Auto-Respond Lead Sync: the Django project and the core domain (sources and inquiries)."""

from autorespond.celery import app as celery_app

__all__ = ["celery_app"]
