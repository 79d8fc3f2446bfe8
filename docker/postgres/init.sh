#!/bin/bash
# Creates Dossier's database and login role. The official postgres image runs
# this once, as the superuser, when the container starts on an empty data
# volume; changing DOSSIER_DB_PASSWORD later does not change the role (use
# `ALTER ROLE dossier PASSWORD ...` then).
#
# The role `dossier` owns the database and runs the migrations. It needs
# CREATEROLE because the first migration creates the NOLOGIN role the app's
# queries run as (DB_APP_ROLE, `dossier_app`) and grants it to `dossier`, which
# then `SET ROLE`s to it so that row-level security applies. `dossier` is not a
# superuser and has no BYPASSRLS.
set -euo pipefail

# Default documented in docker-compose.yml (POSTGRES_PASSWORD, default `dossier`).
DOSSIER_DB_PASSWORD="${DOSSIER_DB_PASSWORD:-dossier}"

# The password goes in as a psql variable (:'password' quotes it as a literal),
# so no character in it can break or inject into the SQL.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=password="$DOSSIER_DB_PASSWORD" <<'EOSQL'
CREATE ROLE dossier LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOBYPASSRLS PASSWORD :'password';
CREATE DATABASE dossier OWNER dossier;
REVOKE ALL ON DATABASE dossier FROM PUBLIC;
-- The superuser keeps no password: it can only log in over the container's
-- local socket (`docker compose exec postgres psql -U postgres`), never with
-- the password the app's DATABASE_URL carries.
ALTER ROLE CURRENT_USER PASSWORD NULL;
EOSQL
