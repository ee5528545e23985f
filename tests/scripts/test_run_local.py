"""``scripts/run_local.py`` (``make run``): each process's lines prefixed with its name, the productId
of the banner's order lines (or a plain word on why there is none), and the local admin account it
makes. The banner's lines themselves are run, as printed, against a real ``make run`` from a fresh
clone in tests/scripts/test_make_run.py."""

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


@pytest.mark.django_db(transaction=True)
def test_the_banner_takes_a_published_product_and_a_tenure_it_sells(product):
    assert run_local.first_product(_local_env()) == (product.item_id, "12_MONTHS", "")


@pytest.mark.django_db(transaction=True)
def test_an_empty_catalogue_is_said_plainly_in_the_banner():
    found = run_local.first_product(_local_env())

    assert found == (run_local.PRODUCT_PLACEHOLDER, "12_MONTHS", found[2])
    assert "no published product" in found[2]
    text = run_local.banner(base="http://127.0.0.1:1", key="k", sandbox_port=2, admin_password=None, product=found)
    assert "!! NO productId for the order below: the catalogue has no published product" in text
    assert "UNKNOWN_PRODUCT" in text


@pytest.mark.django_db(transaction=True)
def test_a_failing_product_lookup_is_shown_not_swallowed(capsys):
    # The bug of issue 22: published_products moved to catalogue.selectors, and the ImportError of the
    # old import vanished; the banner printed the placeholder without a word.
    found = run_local.first_product(_local_env(), code="from orders.selectors import published_products")

    product_id, _, problem = found
    assert product_id == run_local.PRODUCT_PLACEHOLDER
    assert problem.startswith("the productId lookup failed (exit 1): ImportError: cannot import name")
    assert "product      | Traceback" in capsys.readouterr().out  # the whole error, under its own prefix
    text = run_local.banner(base="http://127.0.0.1:1", key="k", sandbox_port=2, admin_password=None, product=found)
    assert "!! NO productId for the order below: the productId lookup failed" in text
