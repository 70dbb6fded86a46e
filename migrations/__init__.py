"""Alembic migrations, shipped inside the package so `hub db upgrade` works from anywhere."""
