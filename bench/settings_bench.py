"""Production settings plus the benchmark's bare endpoint (bench/urls.py)."""

from t2mobile_portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
