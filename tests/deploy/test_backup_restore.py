"""deploy/backup/: backup.sh against a real database holding orders, restore.sh of its dump into a
new database, and the rows read back from that one. The machine's pg_dump and pg_restore, against
the test PostgreSQL server.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from orders.models import Order
from tests.factories import OrderFactory, WebhookLogFactory
from tests.zoho_fixtures import free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup" / "backup.sh"
RESTORE = ROOT / "deploy" / "backup" / "restore.sh"
SERVER = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres"}


def database_url(name: str, port: int = 5432) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{name}"


def run(*argv, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(arg) for arg in argv]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


@pytest.fixture
def restored_name():
    name = f"{connection.settings_dict['NAME']}_restored_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restored_into_a_new_database_holds_the_orders(partner, tmp_path, restored_name):
    # Given orders committed to the database (transaction=True: pg_dump sees what is committed)
    fulfilled = [OrderFactory(partner=partner, status=Order.Status.FULFILLED) for _ in range(2)]
    waiting = OrderFactory(partner=partner, status=Order.Status.PROCESSING)
    WebhookLogFactory(partner=partner, order=fulfilled[0])
    expected = sorted(
        (order.order_id, order.status, order.customer_email) for order in Order.objects.filter(partner=partner)
    )
    assert len(expected) == 3 and waiting.order_id in {row[0] for row in expected}
    # and an old backup beside a file that is not one
    backups = tmp_path / "backups"
    backups.mkdir()
    old, unrelated = backups / "t2mobile-20200101T000000Z.dump", backups / "notes.txt"
    for path in (old, unrelated):
        path.write_text("x")
        month_ago = time.time() - 30 * 86400
        os.utime(path, (month_ago, month_ago))

    # When the database is backed up
    backed_up = run(
        BACKUP,
        env={
            "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
            "BACKUP_DIR": str(backups),
            "BACKUP_RETENTION_DAYS": "14",
        },
    )
    assert backed_up.returncode == 0, backed_up.stderr
    dump = Path(backed_up.stdout.strip())
    assert dump.parent == backups and dump.name.startswith("t2mobile-") and dump.suffix == ".dump"
    assert dump.stat().st_mode & 0o077 == 0, "the dump holds personal data: the owner's alone"
    # the old backup is gone, what is not a backup stays, nothing half-written is left
    assert sorted(path.name for path in backups.iterdir()) == sorted([dump.name, unrelated.name])

    # and restored into a new database
    restored = run(RESTORE, dump, restored_name, env=SERVER)
    assert restored.returncode == 0, restored.stderr

    # Then its check reports the rows, and the rows are the orders that were backed up
    report = " ".join(restored.stdout.split())
    assert "orders | 3" in report and "webhook events | 1" in report and "partners | 1" in report, restored.stdout
    assert "FULFILLED | 2" in report and "PROCESSING | 1" in report, restored.stdout
    with psycopg.connect(database_url(restored_name)) as copy:
        rows = copy.execute("SELECT order_id, status, customer_email FROM t2mobile_orders ORDER BY 1").fetchall()
        applied = copy.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    assert sorted(rows) == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations")
        assert applied == cursor.fetchone()[0]


def test_restore_never_overwrites_an_existing_database(partner, tmp_path):
    OrderFactory(partner=partner)
    env = {"DATABASE_URL": database_url(connection.settings_dict["NAME"]), "BACKUP_DIR": str(tmp_path)}
    dump = run(BACKUP, env=env).stdout.strip()

    refused = run(RESTORE, dump, connection.settings_dict["NAME"], env=SERVER)

    assert refused.returncode != 0
    assert "already exists" in refused.stderr
    assert Order.objects.count() == 1


def test_a_backup_that_cannot_reach_the_database_fails_and_leaves_no_file(tmp_path):
    failed = run(BACKUP, env={"DATABASE_URL": database_url("t2mobile", port=free_port()), "BACKUP_DIR": str(tmp_path)})

    assert failed.returncode != 0
    assert "connection" in failed.stderr
    assert list(tmp_path.iterdir()) == []
