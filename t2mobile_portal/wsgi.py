"""WSGI entry point for gunicorn (``gunicorn t2mobile_portal.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

from t2mobile_portal.checks import secrets_refuse_weak

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "t2mobile_portal.settings")
application = get_wsgi_application()
# gunicorn runs no system checks: a web process with a weak secret must not start either.
secrets_refuse_weak()
