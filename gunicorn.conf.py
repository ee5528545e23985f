"""gunicorn settings: ``gunicorn t2mobile_portal.wsgi --config gunicorn.conf.py``."""

import multiprocessing
import os

from prometheus_client import multiprocess

# Loopback unless told otherwise: only the reverse proxy should reach gunicorn (X-Forwarded-For is
# believed from TRUSTED_PROXIES only). Set GUNICORN_BIND to the proxy network's address if it is
# on another host.
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app logs each request as JSON with its request id
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", os.environ.get("TRUSTED_PROXIES", "127.0.0.1"))
# gunicorn 27's control socket lives at one path per user (~/.gunicorn/gunicorn.ctl): two servers on
# one machine (a web dyno and a benchmark, say) would share it. Nothing here uses it.
control_socket_disable = True
# Request lines up to gunicorn's maximum reach Django, which answers an over-long path or query with
# the partner API's 414 URI_TOO_LONG envelope instead of gunicorn's HTML page.
limit_request_line = 8190


def child_exit(server, worker):
    """A worker has exited: prometheus_client forgets its live gauges. Its counters' files stay in
    PROMETHEUS_MULTIPROC_DIR, so /metrics keeps counting what it counted (counters never go down)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
