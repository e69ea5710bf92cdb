-- The role and database farm expects, for a PostgreSQL you run yourself:
--   psql -U postgres -f infra/postgres/init.sql
-- psql asks for the farm role's password at \password (typed, not echoed) and sends it hashed: it never
-- lands in this file, in the shell history or in the server's log. Then put it in FARM_DATABASE_URL
-- (postgresql://farm:CHANGE-ME@host/farm, in a file only you can read) or in ~/.pgpass, and run: farm db upgrade
CREATE ROLE farm LOGIN;
CREATE DATABASE farm OWNER farm;
\password farm
