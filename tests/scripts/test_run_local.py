"""``scripts/run_local.py`` (``make run``): each process's lines prefixed with its name, the printed
order lines work with bash and curl alone, and the local admin account it makes."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.db import connection

from scripts import run_local


def test_each_line_is_prefixed_with_the_padded_process_name():
    out = io.StringIO()

    run_local.prefix_lines("web", io.BytesIO(b'03:12:01 INFO x started\n{"a": 1}\r\nno newline at the end'), out, 12)

    assert out.getvalue().splitlines() == [
        "web          | 03:12:01 INFO x started",
        'web          | {"a": 1}',
        "web          | no newline at the end",
    ]


def test_a_started_process_has_its_stdout_and_stderr_prefixed():
    out = io.StringIO()
    child = "import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr, flush=True)"

    proc = run_local.start_prefixed("worker", [sys.executable, "-c", child], dict(os.environ), out)
    proc.wait(10)
    proc.output_pump.join(10)

    width = run_local.NAME_WIDTH
    assert sorted(out.getvalue().splitlines()) == [
        f"{'worker':<{width}} | to stderr",
        f"{'worker':<{width}} | to stdout",
    ]


@pytest.mark.django_db(transaction=True)
def test_the_printed_order_lines_place_an_order_replay_it_and_read_its_status(live_server, api_key, product):
    lines = run_local.order_lines(base=live_server.url, key=api_key, product_id=product.item_id)
    post = "\n".join(lines[1:4])
    script = "\n".join([lines[0], post, "echo '--- again'", post, "echo '--- status'", lines[4]])

    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)

    first, again, status = result.stdout.split("--- ")
    order_id = first.split("orderId=")[1].split()[0]
    assert f"Idempotency-Key: key-{order_id}" in first  # the key it uses is shown
    assert "HTTP/1.1 202" in first and "Idempotent-Replayed" not in first
    assert "HTTP/1.1 202" in again and "idempotent-replayed: true" in again.lower()
    assert f'"orderId":"{order_id}"' in status.replace(" ", "") and '"success":true' in status.replace(" ", "")
    assert "uuidgen" not in script


def test_two_orders_pasted_in_the_same_second_get_different_ids():
    ids = subprocess.run(
        ["bash", "-c", "\n".join([run_local.order_lines(base="", key="k", product_id="p")[0]] * 5)],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()

    order_ids = [word for word in ids if word.startswith("orderId=")]
    assert len(order_ids) == 5 and len(set(order_ids)) == 5


def _local_env(**extra) -> dict[str, str]:
    settings_dict = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "t2mobile_portal.settings_test",
        "DATABASE_URL": f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}",
        **extra,
    }


@pytest.mark.django_db(transaction=True)
def test_make_run_makes_a_local_superuser_whose_password_is_kept_in_run(
    tmp_path, monkeypatch, django_user_model, capsys
):
    monkeypatch.setattr(run_local, "RUN_DIR", tmp_path)

    kept = run_local.local_admin(_local_env(DEBUG="true"))
    again = run_local.local_admin(_local_env(DEBUG="true"))  # the next make run: same account, same password

    assert kept == again == tmp_path / "admin_password"
    assert kept.stat().st_mode & 0o077 == 0
    password = kept.read_text().strip()
    user = django_user_model.objects.get(username="admin")
    assert user.is_staff and user.is_superuser and user.check_password(password)
    assert password not in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_no_local_superuser_when_debug_is_off(tmp_path, monkeypatch, django_user_model):
    monkeypatch.setattr(run_local, "RUN_DIR", tmp_path)

    assert run_local.local_admin(_local_env(DEBUG="false")) is None

    assert not django_user_model.objects.filter(username="admin").exists()
    assert not (tmp_path / "admin_password").exists()
