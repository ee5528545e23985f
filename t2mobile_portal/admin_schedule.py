"""The schedule's admin (django-celery-beat's periodic tasks) as staff other than superusers see it.

Ops "change the schedule" (docs/admin.md): *when* a task runs, and whether it runs at all, never
*which* task runs nor what it is given. A periodic task's task name, args, kwargs, queue, exchange,
routing key, priority and headers decide what a worker does when it fires (``orders.expire_subscriptions``
with ``{"as_of": "2099-…"}`` would expire every subscription), so for them those fields are read-only,
and they can neither add a periodic task nor delete one (deleting a crontab that tasks use would
delete those tasks: Django's delete page asks for this delete permission too, and refuses).
Superusers keep django-celery-beat's admin unchanged.

``BackOfficeSite.register`` mixes ``ScheduleTimingOnlyAdmin`` into whichever admin class registers
``PeriodicTask`` (django-celery-beat's own), so the rule holds however that admin is written.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django_celery_beat.models import PeriodicTask

#: What a non-superuser may change on a periodic task: its schedule and whether it is enabled.
TIMING_FIELDS = (
    "enabled",
    "interval",
    "crontab",
    "solar",
    "clocked",
    "start_time",
    "one_off",
    "expires",
    "expire_seconds",
)
#: Fields of the beat admin's form that are not model fields (the registered-task picker).
FORM_ONLY_FIELDS = ("regtask",)


class ScheduleTimingForm(forms.ModelForm):
    """The periodic task form for staff: only ``TIMING_FIELDS`` are fields at all, so whatever
    else a POST carries (``task``, ``kwargs`` …) is never read."""

    class Meta:
        model = PeriodicTask
        fields = TIMING_FIELDS

    def clean(self):
        data = super().clean()
        if data.get("expire_seconds") is not None and data.get("expires"):
            raise forms.ValidationError("Only one can be set, in expires and expire_seconds")
        return data


def _full_control(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class ScheduleTimingOnlyAdmin:
    """Mixed in before the ``PeriodicTask`` ModelAdmin (see the module docstring)."""

    def has_add_permission(self, request):
        return _full_control(request) and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return _full_control(request) and super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if _full_control(request):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in FORM_ONLY_FIELDS]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if _full_control(request):
            return readonly
        shown = [f for _, options in self.get_fieldsets(request, obj) for f in _flat(options["fields"])]
        return readonly + tuple(f for f in shown if f not in TIMING_FIELDS and f not in readonly)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if not _full_control(request):
            kwargs["form"] = ScheduleTimingForm
        return super().get_form(request, obj, change=change, **kwargs)


def _flat(fields) -> list[str]:
    return [name for item in fields for name in (item if isinstance(item, (list, tuple)) else (item,))]


def schedule_admin_class(model_or_iterable, admin_class):
    """The admin class to register: ``admin_class`` with ``ScheduleTimingOnlyAdmin`` mixed in when
    the model is ``PeriodicTask``, else ``admin_class`` as given."""
    models = model_or_iterable if isinstance(model_or_iterable, (list, tuple, set)) else [model_or_iterable]
    if PeriodicTask not in models:
        return admin_class
    admin_class = admin_class or admin.ModelAdmin
    if issubclass(admin_class, ScheduleTimingOnlyAdmin):
        return admin_class
    return type(admin_class.__name__, (ScheduleTimingOnlyAdmin, admin_class), {"__module__": __name__})
