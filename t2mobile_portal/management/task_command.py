"""The management commands that run a Celery task now, in this process, and print what it returned.

``run_task <name>`` runs any registered task; ``send_expiry_reminders``, ``expire_subscriptions`` and
``purge_idempotency_records`` are the same command with the task's name filled in (operations.md
names them), each with its own one-line summary. So a night run by hand goes the way the beat's run
goes: the task is looked up in the Celery app's registry and run through ``Task.apply``, exactly as
a worker would run it, and never by calling its service beside the task.
"""

from __future__ import annotations

import inspect

from celery import Task
from django.core.management.base import BaseCommand, CommandError

import orders.tasks  # (the nightly jobs are registered whatever happens to the other apps)
from core.times import as_of_parse
from t2mobile_portal.celery import app
from t2mobile_portal.schedule import SCHEDULE

AS_OF_HELP = "run as if it were this time (ISO 8601; no offset means TIME_ZONE); default now"


def registered_tasks() -> tuple[dict[str, Task], str | None]:
    """The Celery registry after autodiscovery, and the import error of a broken tasks module."""
    try:
        app.loader.import_default_modules()  # autodiscovery of every app's tasks.py
    except Exception as exc:  # one app's broken tasks.py must not hide the others' tasks
        return app.tasks, f"{type(exc).__name__}: {exc}"
    return app.tasks, None


def takes_as_of(task: Task) -> bool:
    return "as_of" in inspect.signature(task.run).parameters


class TaskCommand(BaseCommand):
    """Runs one registered task through ``Task.apply`` and prints ``summary()`` of its result.

    A subclass names its task in ``task_name``; it gets ``--as-of`` when the task takes ``as_of``.
    For such a task the time is always resolved here (now when ``--as-of`` is not given), so that
    the summary can say which moment the run was for; the task itself refuses a time in the future
    (``orders.tasks.scheduled_as_of``), which the command reports as its error.
    """

    task_name = ""

    def add_arguments(self, parser):
        if takes_as_of(self.task(self.task_name, warn=False)):
            parser.add_argument("--as-of", help=AS_OF_HELP)

    def handle(self, *args, **options):
        name = options.get("name") or self.task_name
        task = self.task(name)
        kwargs = {}
        if takes_as_of(task):
            try:
                kwargs["as_of"] = as_of_parse(options.get("as_of")).isoformat()
            except ValueError as exc:
                raise CommandError(f"--as-of: {exc}") from None
        elif options.get("as_of"):
            raise CommandError(f"{name} does not take --as-of")
        try:
            result = task.apply(kwargs=kwargs, throw=True)
        except orders.tasks.FutureAsOfRefused as exc:
            raise CommandError(f"--as-of: {exc}") from None
        self.stdout.write(self.summary(name, result.result, as_of=kwargs.get("as_of")))

    def task(self, name: str, *, warn: bool = True) -> Task:
        tasks, import_error = registered_tasks()
        if import_error and warn:
            self.stderr.write(f"warning: a tasks module failed to import: {import_error}")
        if name not in tasks:
            scheduled = ", ".join(entry.task for entry in SCHEDULE)
            registered = ", ".join(sorted(t for t in tasks if not t.startswith("celery.")))
            raise CommandError(
                f"unknown task {name!r}. Scheduled tasks: {scheduled}. Registered here: {registered or 'none'}."
            )
        return tasks[name]

    def summary(self, name: str, result, *, as_of: str | None) -> str:
        """The line printed after the run; by default the task's name and what it returned."""
        return f"{name}: {result!r}"
