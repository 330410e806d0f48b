"""Database plumbing shared by the three servers (FL-API, recommender, MPC service).

A layer of its own between the servers and ``lerna.core``: the servers may not import each other,
and ``core`` must stay free of SQLAlchemy and Alembic because the SDK imports it. Import-linter
keeps ``lerna.sdk`` and ``lerna.core`` from importing this package. It holds no schema and no
service knowledge: each service passes its own metadata, version table and SQLite settings.

- ``engines``: one ``make_engine`` for SQLite and server databases.
- ``sqlite``: the SQLite connection setup (pragmas, how transactions begin).
- ``writer_lock``: the optional process-wide writer queue in front of SQLite's own lock.
- ``sessions``: session factory and the one-unit-of-work ``transaction``.
- ``migrations``: the Alembic runner and the body of every service's ``env.py``.
"""
