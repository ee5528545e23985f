"""How back-office actions ask before they act, and write the audit entry.

Every action that changes something first shows a confirmation page listing the rows (with a form
when it needs input, such as a failure reason); only the page's "Yes" performs it, by calling a
service per row, and each row that changed gets a ``LogEntry`` (the object's History page).

``ObjectActionsMixin`` offers the same actions as buttons on one object's change page
(``<pk>/actions/<name>/``), so "where is order X and why" and "fix it" are on the same page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

logger = logging.getLogger(__name__)

CONFIRM_TEMPLATE = "admin/backoffice/confirm_action.html"


def confirm_then_act(
    modeladmin,
    request,
    queryset: QuerySet,
    *,
    title: str,
    question: str,
    confirm_label: str,
    act: Callable[[object, dict], str | None],
    done: str,
    form_class: type[forms.Form] | None = None,
    refused: tuple[type[Exception], ...] = (),
):
    """Show the confirmation page; on "Yes", call ``act(obj, form_data)`` per row and log it.

    ``act`` returns the audit message for a row it changed, or None when the row was left as it
    was. A service's refusal (one of ``refused``, e.g. re-driving a FULFILLED order) is reported
    for its row and the other rows go on.
    """
    confirmed, form = confirmed_form(request, form_class)
    if confirmed:
        data = form.cleaned_data if form else {}
        changed = 0
        for obj in queryset:
            try:
                message = act(obj, data)
            except refused as exc:
                logger.info("admin action refused", extra={"object": str(obj), "reason": str(exc)})
                modeladmin.message_user(request, f"{obj}: not done ({exc})", messages.ERROR)
                continue
            if message:
                modeladmin.log_change(request, obj, message)
                changed += 1
        modeladmin.message_user(request, f"{done}: {changed} of {len(queryset)}.", messages.SUCCESS)
        return None
    return confirmation_page(
        modeladmin, request, queryset, title=title, question=question, confirm_label=confirm_label, form=form
    )


def confirmed_form(request, form_class: type[forms.Form] | None):
    """(confirmed, form): whether the page's "Yes" was pressed, and the form bound to it if so."""
    confirmed = request.POST.get("post") == "yes"
    form = form_class(request.POST if confirmed else None) if form_class else None
    return confirmed and (form is None or form.is_valid()), form


def confirmation_page(modeladmin, request, queryset, *, title: str, question: str, confirm_label: str, form=None):
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "confirm_label": confirm_label,
        "objects": list(queryset),
        "form": form,
        "opts": opts,
        "app_label": opts.app_label,
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + (form.media if form else forms.Media()),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, CONFIRM_TEMPLATE, context)


def show_once(modeladmin, request, *, title: str, secret_label: str, secret: str, note: str, back_url: str):
    """A page that shows a new secret (API key, signing secret) once; it is never stored in plain."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "secret_label": secret_label,
        "secret": secret,
        "note": note,
        "back_url": back_url,
        "opts": opts,
        "app_label": opts.app_label,
    }
    response = TemplateResponse(request, "admin/backoffice/show_once.html", context)
    response["Cache-Control"] = "no-store"
    return response


class ObjectActionsMixin:
    """The ModelAdmin's actions named in ``object_actions`` as buttons on the change page."""

    object_actions: Iterable[str] = ()
    #: Button labels where the action's description speaks of "the selected" rows.
    object_action_labels: dict[str, str] = {}
    change_form_template = "admin/backoffice/change_form_with_actions.html"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/actions/<str:action_name>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_object_action",
            ),
            *super().get_urls(),
        ]

    def object_action_view(self, request, object_id, action_name):
        actions = self.get_actions(request)
        if action_name not in self.object_actions or action_name not in actions:
            raise PermissionDenied
        # get_object answers None for an id the primary key cannot hold ("abc" for an integer), as
        # Django's change page does, instead of letting the query raise.
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        func = actions[action_name][0]
        response = func(self, request, queryset)
        if response is not None:
            return response
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
        )

    def object_action_applies(self, obj, name: str) -> bool:
        """Whether the button ``name`` does anything for ``obj`` in its state (a button that would
        only answer "not done" is not shown). Every action by default."""
        return True

    def object_action_buttons(self, request, object_id) -> list[tuple[str, str]]:
        actions = self.get_actions(request)
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return []
        url_name = f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action"
        return [
            (self.object_action_labels.get(name, actions[name][2]), reverse(url_name, args=[object_id, name]))
            for name in self.object_actions
            if name in actions and self.object_action_applies(obj, name)
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        buttons = self.object_action_buttons(request, object_id) if object_id else []
        extra_context = {**(extra_context or {}), "object_action_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra_context=extra_context)
