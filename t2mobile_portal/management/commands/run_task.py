"""``manage.py run_task <name> [--as-of ISO]``: run a scheduled Celery task now, in this process.

The task is looked up by name in the Celery app's registry, so every app's tasks are reachable
(``orders.send_expiry_reminders``, ``webhooks.deliver_due_webhooks``, …). It runs synchronously
through Celery's machinery (``Task.apply``), exactly as a worker would run it.
"""

from __future__ import annotations

import inspect

from django.core.management.base import BaseCommand, CommandError

from t2mobile_portal.schedule import SCHEDULE
from t2mobile_portal.times import as_of_parse


def _registered_tasks() -> tuple[dict, str | None]:
    """The Celery registry after autodiscovery, and the import error of a broken tasks module."""
    import orders.tasks  # noqa: F401  (this app's tasks, whatever happens to the others)
    from t2mobile_portal.celery import app

    try:
        app.loader.import_default_modules()  # autodiscovery of every app's tasks.py
    except Exception as exc:  # one app's broken tasks.py must not hide the others' tasks
        return app.tasks, f"{type(exc).__name__}: {exc}"
    return app.tasks, None


class Command(BaseCommand):
    help = "Run a scheduled task now, synchronously (e.g. orders.send_expiry_reminders)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Celery task name, e.g. orders.expire_subscriptions")
        parser.add_argument("--as-of", help="for tasks that take it: run as if it were this time (ISO 8601)")

    def handle(self, *args, **options):
        name = options["name"]
        tasks, import_error = _registered_tasks()
        if import_error:
            self.stderr.write(f"warning: a tasks module failed to import: {import_error}")
        if name not in tasks:
            scheduled = ", ".join(entry.task for entry in SCHEDULE)
            registered = ", ".join(sorted(t for t in tasks if not t.startswith("celery.")))
            raise CommandError(
                f"unknown task {name!r}. Scheduled tasks: {scheduled}. Registered here: {registered or 'none'}."
            )
        task = tasks[name]
        kwargs = {}
        if options["as_of"]:
            if "as_of" not in inspect.signature(task.run).parameters:
                raise CommandError(f"{name} does not take --as-of")
            try:
                kwargs["as_of"] = as_of_parse(options["as_of"]).isoformat()
            except ValueError as exc:
                raise CommandError(f"--as-of: {exc}") from None
        result = task.apply(kwargs=kwargs, throw=True)
        self.stdout.write(f"{name}: {result.result!r}")
