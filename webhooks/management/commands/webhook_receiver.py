"""``manage.py webhook_receiver [--port 8766] [--secret-file PATH]``: a local receiver that verifies
Standard Webhooks signatures and prints each event (``make run`` points T2MOBILE_WEBHOOK_URL at it).

The secret comes from T2MOBILE_WEBHOOK_SECRET or from a file, never from the command line, where
``ps`` would show it to every user of the machine."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webhooks.receiver import receiver_server


class Command(BaseCommand):
    help = "Run a local webhook receiver that verifies signatures and prints each verified event."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8766)
        parser.add_argument(
            "--secret-file", default="", help="a file holding the whsec_… secret (default: T2MOBILE_WEBHOOK_SECRET)"
        )

    def handle(self, *args, host: str, port: int, secret_file: str, **options):
        if secret_file:
            try:
                secret = Path(secret_file).read_text().strip()
            except OSError as exc:
                raise CommandError(f"Cannot read the secret file {secret_file}: {exc.strerror}") from None
        else:
            secret = settings.T2MOBILE_WEBHOOK_SECRET
        if not secret:
            raise CommandError("No secret: set T2MOBILE_WEBHOOK_SECRET or pass --secret-file with a whsec_… secret.")

        def on_event(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            server = receiver_server(host=host, port=port, secret=secret, on_event=on_event)
        except Exception as exc:
            raise CommandError(f"Cannot start the receiver on {host}:{port}: {exc}") from None
        self.stdout.write(f"webhook receiver listening on http://{host}:{port}/ (any path; e.g. /webhooks/t2mobile)")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
