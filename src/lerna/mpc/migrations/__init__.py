"""Alembic migrations of the MPC service's own database (version table ``mpc_alembic_version``)."""
