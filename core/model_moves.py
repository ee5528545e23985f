"""Moving a model to another app without touching its table (plumbing: imports no app).

The migrations of a move are ``SeparateDatabaseAndState`` operations (the table stays, only Django's
idea of which app owns it changes). ``content_types_move`` goes with them: it moves the model's
``django_content_type`` row to the new app, so that permissions granted on it, the staff groups and
the admin's history (LogEntry) follow the model instead of pointing at a model that no longer exists.
"""

from __future__ import annotations

from django.db import migrations


def _move(apps, old_label: str, new_label: str, model: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    log_entry = apps.get_model("admin", "LogEntry")
    old = content_type.objects.filter(app_label=old_label, model=model).first()
    if old is None:  # a fresh database: content types are made after migrate
        return
    new = content_type.objects.filter(app_label=new_label, model=model).first()
    if new is None:
        old.app_label = new_label
        old.save(update_fields=["app_label"])
        return
    # Both exist (an earlier migrate's post_migrate made the new one): keep the new one, carry over
    # every grant and history entry of the old one, then drop it.
    for old_permission in permission.objects.filter(content_type=old):
        twin = permission.objects.filter(content_type=new, codename=old_permission.codename).first()
        if twin is None:
            old_permission.content_type = new
            old_permission.save(update_fields=["content_type"])
            continue
        twin.group_set.add(*old_permission.group_set.all())
        twin.user_set.add(*old_permission.user_set.all())
        old_permission.delete()
    log_entry.objects.filter(content_type=old).update(content_type=new)
    old.delete()


def content_types_move(*moves: tuple[str, str, str]) -> migrations.RunPython:
    """A migration operation: for each (old app label, new app label, model name), move the content
    type with its permissions and admin history."""

    def forward(apps, schema_editor):
        for old, new, model in moves:
            _move(apps, old, new, model)

    def backward(apps, schema_editor):
        for old, new, model in moves:
            _move(apps, new, old, model)

    return migrations.RunPython(forward, backward)
