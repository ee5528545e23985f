"""Django project package; importing it loads the Celery app so that ``shared_task`` binds to it."""

from t2mobile_portal.celery import app as celery_app

__all__ = ("celery_app",)
