-- The role and database farm expects, for a PostgreSQL you run yourself.
-- psql -U postgres -f infra/postgres/init.sql ; then: FARM_DATABASE_URL=postgresql://farm:...@host/farm farm db upgrade
CREATE ROLE farm LOGIN PASSWORD 'change-me';
CREATE DATABASE farm OWNER farm;
