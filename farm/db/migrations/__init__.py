"""Alembic migrations, shipped inside the package and run by farm.db.migrate (no alembic.ini needed)."""
