"""Alembic migrations of the recommendation service's own store (version table
``recommender_alembic_version``, so it can share a database with the FL-API's)."""
