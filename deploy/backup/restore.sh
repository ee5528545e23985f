#!/usr/bin/env bash
# Restores a backup of backup.sh into a new database, then checks what came back: the migrations
# applied, and how many partners, API keys, orders (by status), fulfilments, subscriptions and
# webhook events it holds, for comparison with what the live database or the last report said.
#
#   restore.sh DUMP DATABASE [OWNER]
#
# DATABASE must not exist yet (a restore never overwrites a database; rename or drop it yourself
# afterwards). OWNER, when given, owns the new database and its tables. The server is the one of
# libpq's PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD) or ~/.pgpass, as for createdb and
# psql: run it as a role that may create databases, e.g. `sudo -u postgres restore.sh …`.
set -euo pipefail

dump="${1:?usage: restore.sh DUMP DATABASE [OWNER]}"
database="${2:?usage: restore.sh DUMP DATABASE [OWNER]}"
owner="${3:-}"
[[ "$database" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "DATABASE: letters, digits and _ only" >&2; exit 2; }
[[ -z "$owner" || "$owner" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "OWNER: letters, digits and _ only" >&2; exit 2; }
pg_restore --list "$dump" >/dev/null  # a readable archive, before anything is created

createdb ${owner:+--owner="$owner"} "$database"
# --no-owner: the tables belong to whoever restores (or OWNER), not to the dumped database's role.
pg_restore --dbname="$database" --no-owner --no-privileges --exit-on-error ${owner:+--role="$owner"} "$dump"

# The check: fails (non-zero) if the gateway's tables are not there.
psql --dbname="$database" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --pset=footer=off <<'SQL'
\echo 'migrations applied, latest per app:'
SELECT app, max(name) AS latest, count(*) AS applied FROM django_migrations
 WHERE app IN ('partners', 'catalogue', 'orders', 'webhooks') GROUP BY app ORDER BY app;
\echo 'rows:'
SELECT 'partners' AS what, count(*) AS count FROM t2mobile_partners
UNION ALL SELECT 'api keys (not revoked)', count(*) FROM t2mobile_api_keys WHERE revoked_at IS NULL
UNION ALL SELECT 'orders', count(*) FROM t2mobile_orders
UNION ALL SELECT 'fulfilments', count(*) FROM t2mobile_fulfilments
UNION ALL SELECT 'subscriptions', count(*) FROM t2mobile_subscriptions
UNION ALL SELECT 'webhook events', count(*) FROM t2mobile_webhook_logs;
\echo 'orders by status:'
SELECT status, count(*) AS count, max(created_at) AS newest FROM t2mobile_orders GROUP BY status ORDER BY status;
SQL
echo "restored into $database"
