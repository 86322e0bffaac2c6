#!/usr/bin/env bash
#
# Creates the order service's database and roles. The official postgres image runs every script
# in /docker-entrypoint-initdb.d once, when its data volume is empty; docker-compose.yml mounts
# this file there. The same statements as `pg_setup_service_db` in scripts/lib.sh (the local
# launcher), with the passwords taken from the environment:
#   * orders_ingestor owns database `orders` and runs the migrations (it creates the tables);
#   * orders_api may only read them, including tables created by later migrations.
#
# Environment: POSTGRES_USER and POSTGRES_DB (set by the image), ORDERS_INGESTOR_PASSWORD and
# ORDERS_API_PASSWORD (set by docker-compose.yml).
set -euo pipefail

: "${ORDERS_INGESTOR_PASSWORD:?must be set}"
: "${ORDERS_API_PASSWORD:?must be set}"

# psql variables (:'name') quote the passwords as SQL literals, whatever they contain.
psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v ingestor_password="$ORDERS_INGESTOR_PASSWORD" \
    -v api_password="$ORDERS_API_PASSWORD" <<'SQL'
CREATE ROLE orders_ingestor LOGIN PASSWORD :'ingestor_password';
CREATE ROLE orders_api LOGIN PASSWORD :'api_password';
CREATE DATABASE orders OWNER orders_ingestor ENCODING 'UTF8' TEMPLATE template0;
SQL

psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname orders <<'SQL'
GRANT CONNECT ON DATABASE orders TO orders_api;
GRANT USAGE ON SCHEMA public TO orders_api;
-- Tables the ingestor creates later (its migrations) become readable by the api.
ALTER DEFAULT PRIVILEGES FOR ROLE orders_ingestor IN SCHEMA public
    GRANT SELECT ON TABLES TO orders_api;
SQL
