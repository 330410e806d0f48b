"""Revisions of the recommender store, oldest first."""
