#!/usr/bin/env bash
# A backup of the gateway's database: pg_dump's custom format (compressed, restored with
# pg_restore, table by table if need be) into BACKUP_DIR, named by the time it was taken in UTC,
# and backups older than BACKUP_RETENTION_DAYS removed. Prints the new file's path.
#
#   backup.sh [DATABASE_URL]
#
# DATABASE_URL (the argument, else the environment, as in /etc/t2mobile/env) names the database;
# libpq's PG* variables and ~/.pgpass work as for any PostgreSQL client. A daily run:
# deploy/backup/t2mobile-backup.{service,timer}, docs/deploy.md.
set -euo pipefail

database_url="${1:-${DATABASE_URL:?give DATABASE_URL, as an argument or in the environment}}"
backup_dir="${BACKUP_DIR:-/var/backups/t2mobile}"
retention_days="${BACKUP_RETENTION_DAYS:-14}"
[[ "$retention_days" =~ ^[0-9]+$ ]] || { echo "BACKUP_RETENTION_DAYS must be a number of days" >&2; exit 2; }

umask 077  # the dump holds customer names, emails and phone numbers
mkdir -p "$backup_dir"
name="t2mobile-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$backup_dir/.$name.partial"
trap 'rm -f "$partial"' EXIT

# Written aside and renamed once complete and readable, so a file with the final name is whole.
pg_dump --format=custom --compress=6 --file="$partial" --dbname="$database_url"
pg_restore --list "$partial" >/dev/null
mv "$partial" "$backup_dir/$name"
trap - EXIT

# Retention: whole days by modification time; the backup just taken is never among them.
find "$backup_dir" -maxdepth 1 -name 't2mobile-*.dump' -type f -mtime "+$retention_days" -print -delete >&2
echo "$backup_dir/$name"
