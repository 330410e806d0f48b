"""Recommendation service: a Harness-compatible Universal Recommender in one Python process.

Correlated cross-occurrence (CCO) with log-likelihood-ratio correlators, trained with
scipy.sparse in seconds, served over the Harness REST API from its own SQLAlchemy store.
Entry points: ``lerna.recommender.app.create_app``, ``RecommenderSettings`` and
``check_bind_allowed`` (in ``lerna.recommender.settings``).
"""

from lerna.recommender.settings import RecommenderSettings, check_bind_allowed

__all__ = ["RecommenderSettings", "check_bind_allowed"]
