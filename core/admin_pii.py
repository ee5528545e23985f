"""The admin's guard on customer contact data: no lookup that reveals part of a value.

Staff without ``orders.view_customer_pii`` see email and phone masked; they must not be able to
unmask them by asking the change list questions about the value either: ``?customer_email__gte=m``
bisected, ``__startswith``, ``__regex``, a range, ordering by the field, a list filter offering its
values, a ``contains`` search, a ``payload__data__customerEmail__…`` lookup into a stored webhook
body. Every admin of ours inherits ``PiiGuardedAdmin``, which checks each lookup path (through
relations too, e.g. ``partner__orders__customer_email__gte``) against ``PII_FIELDS`` and refuses with
``DisallowedModelAdminLookup``, which Django answers with its normal 400 for an incorrect lookup.

What stays open: the exact value of an email or phone (``=customer_email`` search,
``customer_email=…``), which is how support finds a caller's order and reveals nothing the caller did
not say, and ``isnull``. A stored document or a value derived from one (``OPAQUE``: a webhook body,
an idempotency record's answer and fingerprint) takes only ``isnull``: matching a guess of it
exactly would confirm the guess.
"""

from __future__ import annotations

from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP

PII_PERMISSION = "orders.view_customer_pii"

EXACT_ONLY = "exact-only"  # the full value may be matched, nothing else
OPAQUE = "opaque"  # a stored document holding contact data: no lookup into it at all

# model label → field name → rule. Fields holding a customer's email or phone, or documents that do.
PII_FIELDS: dict[str, dict[str, str]] = {
    "orders.Order": {"customer_email": EXACT_ONLY, "customer_phone": EXACT_ONLY},
    # The fingerprint is a keyed hash of the request; an unkeyed one (older records) could be
    # confirmed by filtering on a guess's hash, so it takes no lookup either.
    "orders.IdempotencyRecord": {"response_body": OPAQUE, "fingerprint": OPAQUE},
    "webhooks.WebhookLog": {"payload": OPAQUE, "body": OPAQUE},
}
ALLOWED_AFTER = {EXACT_ONLY: ({"exact", "iexact", "isnull"}), OPAQUE: {"isnull"}}


def can_see_pii(request) -> bool:
    return request.user.has_perm(PII_PERMISSION)


def pii_path(model, path: str) -> tuple[str, list[str]] | None:
    """``(rule, the lookup parts after the PII field)`` when ``path`` reaches a PII field, else None."""
    parts = path.lstrip("-").split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None  # a transform, ``pk`` or no field at all: Django's own checks apply
        rule = PII_FIELDS.get(model._meta.label, {}).get(field.name)
        if rule is not None:
            return rule, parts[index + 1 :]
        if not field.is_relation or field.related_model is None:
            return None
        model = field.related_model
    return None


def pii_lookup_allowed(model, lookup: str) -> bool:
    found = pii_path(model, lookup)
    if found is None:
        return True
    rule, rest = found
    if not rest:  # the field itself, i.e. an exact match: a guess of a whole document is confirmed too
        return rule == EXACT_ONLY
    return len(rest) == 1 and rest[0] in ALLOWED_AFTER[rule]


def pii_ordering_refused(model, ordering) -> str | None:
    """The first ordering entry that sorts by a PII field (sorting bisects a value as well as ``gte``)."""
    for entry in ordering:
        name = getattr(entry, "expression", entry)  # OrderBy(F("…")) as well as "-field"
        name = getattr(name, "name", name)
        if isinstance(name, str) and pii_path(model, name) is not None:
            return name
    return None


class PiiGuardedAdmin:
    """Mix into every ModelAdmin (before ``admin.ModelAdmin``)."""

    def lookup_allowed(self, lookup, value, request=None):
        if request is not None and not can_see_pii(request) and not pii_lookup_allowed(self.model, lookup):
            raise DisallowedModelAdminLookup(f"Filtering by {lookup} not allowed")
        return super().lookup_allowed(lookup, value, request)

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        if can_see_pii(request):
            return fields
        # only exact ("=") searches may touch a PII field; anything else would be a contains search
        return [name for name in fields if name.startswith("=") or pii_path(self.model, name.lstrip("^@")) is None]

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if can_see_pii(request):
            return filters
        return [item for item in filters if not _filters_on_pii(self.model, item)]

    def get_changelist(self, request, **kwargs):
        changelist = super().get_changelist(request, **kwargs)
        if can_see_pii(request):
            return changelist

        class PiiGuardedChangeList(changelist):
            def get_ordering(self, request, queryset):
                ordering = super().get_ordering(request, queryset)
                refused = pii_ordering_refused(self.model, ordering)
                if refused:
                    raise DisallowedModelAdminLookup(f"Ordering by {refused} not allowed")
                return ordering

        return PiiGuardedChangeList


def _filters_on_pii(model, item) -> bool:
    name = item[0] if isinstance(item, (list, tuple)) else item
    return isinstance(name, str) and pii_path(model, name) is not None
