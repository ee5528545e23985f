"""``manage.py zoho_sandbox [--port 8765]``: serve the local ZOHO SANDBOX (not Zoho) for ``make run``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from integrations.zoho.sandbox import SANDBOX_REFRESH_TOKEN, ZohoSandbox


class Command(BaseCommand):
    help = "Serve the in-memory Zoho SANDBOX (OAuth + Inventory API shapes) on localhost. Not Zoho."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--rate-limit", type=int, default=100, help="API calls allowed per window (429 beyond)")
        parser.add_argument("--window", type=float, default=60.0, help="rate-limit window in seconds")
        parser.add_argument("--max-inflight", type=int, default=10, help="API calls in flight (429 beyond)")
        parser.add_argument("--fail-rate", type=float, default=0.0, help="share of API calls answered 503")
        parser.add_argument("--refresh-token", default=SANDBOX_REFRESH_TOKEN, help="the refresh token it accepts")
        parser.add_argument("--verbose", action="store_true", help="log every request")

    def handle(self, *args, **opts):
        sandbox = ZohoSandbox(
            host=opts["host"],
            port=opts["port"],
            rate_limit=opts["rate_limit"],
            window=opts["window"],
            max_inflight=opts["max_inflight"],
            fail_rate=opts["fail_rate"],
            refresh_token=opts["refresh_token"],
            verbose=opts["verbose"],
        )
        self.stdout.write(
            f"ZOHO SANDBOX (local stand-in, not Zoho) on {sandbox.accounts_url}\n"
            f"  ZOHO_ACCOUNTS_URL={sandbox.accounts_url}\n"
            f"  ZOHO_API_BASE={sandbox.api_base}\n"
            f"  ZOHO_REFRESH_TOKEN={opts['refresh_token']}\n"
            f"  limits: {opts['rate_limit']} calls / {opts['window']:g} s, {opts['max_inflight']} in flight, "
            f"fail rate {opts['fail_rate']:g}; state at {sandbox.accounts_url}/sandbox/state"
        )
        try:
            sandbox.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.server.server_close()
