"""Revisions of the MPC service's database, oldest first."""
